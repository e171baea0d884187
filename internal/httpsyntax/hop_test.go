package httpsyntax

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestHopHeaders: the quick check knows every field RemoveHopHeaders
// removes, and end-to-end fields are kept, but for those Connection names.
func TestHopHeaders(t *testing.T) {
	for _, name := range hopHeaders {
		h := http.Header{name: {"x"}, "X-Kept": {"1"}}
		if !HasHopHeaders(h) {
			t.Errorf("HasHopHeaders misses %s", name)
		}
		RemoveHopHeaders(h)
		if diff := cmp.Diff(http.Header{"X-Kept": {"1"}}, h); diff != "" {
			t.Errorf("RemoveHopHeaders with %s (-want +got):\n%s", name, diff)
		}
	}
	if HasHopHeaders(http.Header{"X-Kept": {"1"}, "Content-Type": {"a/b"}, "Content-Length": {"1"}}) {
		t.Error("HasHopHeaders on end-to-end fields = true")
	}
	h := http.Header{"Connection": {"x-private, close", " X-Other "}, "X-Private": {"1"}, "X-Other": {"2"}, "X-Kept": {"3"}}
	RemoveHopHeaders(h)
	if diff := cmp.Diff(http.Header{"X-Kept": {"3"}}, h); diff != "" {
		t.Errorf("Connection's tokens (-want +got):\n%s", diff)
	}
}
