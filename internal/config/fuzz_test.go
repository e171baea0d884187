package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzLoad loads arbitrary bytes as the user's file. Load must never panic;
// when it succeeds, Masked must load back to the same config (unless it
// masked something).
func FuzzLoad(f *testing.F) {
	def := defaults(f)
	f.Add([]byte(miffy10))
	f.Add([]byte("[kafka]\nbrokers = [\"a:1\"]\nbootstrap.servers = \"a:1\"\n"))
	f.Add([]byte("[[routes]]\npath = \"/static/{*rest}\"\nmethods = [\"GET\"]\n[[routes]]\npath = \"/static/x\"\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "config.toml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(def, path, []string{"KAFKA_CLIENT_ID=fuzz", "MIFFY_SHADOW__TIMEOUT=2s"})
		if err != nil {
			return
		}
		masked := c.Masked()
		if strings.Contains(masked, mask) {
			return
		}
		if err := os.WriteFile(path, []byte(masked), 0o600); err != nil {
			t.Fatal(err)
		}
		again, err := Load(def, path, []string{"KAFKA_CLIENT_ID=fuzz", "MIFFY_SHADOW__TIMEOUT=2s"})
		if err != nil {
			t.Fatalf("loading Masked output: %v\n%s", err, masked)
		}
		if diff := cmp.Diff(c, again); diff != "" {
			t.Errorf("Masked round trip (-want +got)\n%s\n%s", diff, masked)
		}
	})
}
