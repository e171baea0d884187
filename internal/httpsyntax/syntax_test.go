package httpsyntax

import "testing"

func TestHasToken(t *testing.T) {
	for _, tt := range []struct {
		v, tok string
		want   bool
	}{
		{"close", "close", true},
		{"Keep-Alive, CLOSE", "close", true},
		{" upgrade ,\tclose\t", "close", true},
		{"closed", "close", false},
		{"foo close", "close", false},
		{"", "close", false},
		{",,", "close", false},
	} {
		if got := HasToken(tt.v, tt.tok); got != tt.want {
			t.Errorf("HasToken(%q, %q) = %v, want %v", tt.v, tt.tok, got, tt.want)
		}
	}
}

func TestTokensAndValues(t *testing.T) {
	for _, s := range []string{"Content-Type", "x!#$%&'*+-.^_`|~9"} {
		if !ValidToken(s) {
			t.Errorf("ValidToken(%q) = false", s)
		}
	}
	for _, s := range []string{"", "a b", "a:b", "a\x00", "ä", "a\"b", "(x)"} {
		if ValidToken(s) {
			t.Errorf("ValidToken(%q) = true", s)
		}
	}
	if !ValidValue("a\tb ä ~") || ValidValue("a\rb") || ValidValue("a\x7f") || ValidValue("\x00") {
		t.Error("ValidValue")
	}
	if got := TrimOWS(" \t a b \t"); got != "a b" {
		t.Errorf("TrimOWS = %q", got)
	}
	if !EqualFold("Close", "cLOSE") || EqualFold("close", "closed") || EqualFold("k", "K\x00") {
		t.Error("EqualFold")
	}
}

func TestHasLineBreak(t *testing.T) {
	for s, want := range map[string]bool{"": false, "plain value": false, "a\rb": true, "a\nb": true, "\r\n": true, "tab\tok": false} {
		if got := HasLineBreak(s); got != want {
			t.Errorf("HasLineBreak(%q) = %v, want %v", s, got, want)
		}
	}
}
