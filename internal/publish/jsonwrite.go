package publish

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/miffy-proxy/miffy/internal/jsonpath"
)

// Small appenders that write JSON without reflection. Strings are escaped
// like encoding/json (invalid UTF-8 becomes U+FFFD) except that <, > and &
// are left alone: records are not embedded in HTML.

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte { return jsonpath.AppendJSONString(b, s) }

// appendStringContents appends s escaped for a JSON string, without the
// quotes; lower maps ASCII upper case to lower case (header names).
func appendStringContents(b []byte, s string, lower bool) []byte {
	return jsonpath.AppendStringContents(b, s, lower)
}

// appendMillis appends d in milliseconds with microsecond precision: 1.234.
func appendMillis(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', -1, 64)
}

// appendAny appends a decoded JSON value (a Diff's reference or candidate).
// Common scalars are written directly; anything else goes through
// encoding/json.
func appendAny(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	}
	out, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, out...), nil
}
