package upstream

import (
	"flag"
	"os"
	"testing"
)

// TestMain runs up to 4 tests at once unless -parallel says otherwise: the
// tests mostly wait (on timeouts, on held connections), so the default of
// GOMAXPROCS (2 here) would queue them behind each other's waits.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", "4")
	}
	os.Exit(m.Run())
}
