package miffy

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestContainerFiles checks what the container build relies on: the
// builder's Go version is go.mod's to the patch, the build context leaves
// out the history and built binaries, and compose builds one image.
func TestContainerFiles(t *testing.T) {
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(read("go.mod"))
	from := regexp.MustCompile(`(?m)^FROM golang:(\S+) AS build$`).FindStringSubmatch(read("Dockerfile"))
	if goVersion == nil || from == nil || goVersion[1] != from[1] {
		t.Errorf("Dockerfile builder golang:%v, go.mod go %v: want the same version", from, goVersion)
	}

	ignored := strings.Fields(read(".dockerignore"))
	for _, want := range []string{".git", "bin/"} {
		if !strings.Contains(" "+strings.Join(ignored, " ")+" ", " "+want+" ") {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}

	if n := strings.Count(read("docker-compose.yml"), "build:"); n != 1 {
		t.Errorf("docker-compose.yml builds %d times, want one image built once", n)
	}
}
