package logging

import (
	"bytes"
	"io"
)

// stackdriverWriter renames zerolog's fields to the ones Google Cloud
// Logging reads: "level" becomes "severity" (in upper case), "message" stays.
// zerolog writes one JSON object per call, with level first after "{".
type stackdriverWriter struct{ w io.Writer }

var severities = map[string]string{
	"trace": "DEBUG", "debug": "DEBUG", "info": "INFO", "warn": "WARNING",
	"error": "ERROR", "fatal": "CRITICAL", "panic": "ALERT",
}

func (s stackdriverWriter) Write(p []byte) (int, error) {
	const key = `"level":"`
	i := bytes.Index(p, []byte(key))
	if i < 0 {
		return s.w.Write(p)
	}
	j := bytes.IndexByte(p[i+len(key):], '"')
	if j < 0 {
		return s.w.Write(p)
	}
	lvl := string(p[i+len(key) : i+len(key)+j])
	sev, ok := severities[lvl]
	if !ok {
		sev = "DEFAULT"
	}
	out := make([]byte, 0, len(p)+8)
	out = append(out, p[:i]...)
	out = append(out, `"severity":"`...)
	out = append(out, sev...)
	out = append(out, p[i+len(key)+j:]...)
	if _, err := s.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
