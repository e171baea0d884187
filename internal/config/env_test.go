package config

import (
	"errors"
	"testing"
)

// TestNameVariables: errors found after Load (the Kafka client's checks of
// the properties) name the variable that set the key, whichever way the
// key is spelled (kafka.acks, kafka."acks").
func TestNameVariables(t *testing.T) {
	acks := errors.New(`kafka."acks": want all, 1 or 0, got "x"`)
	tests := []struct {
		name    string
		environ []string
		err     error
		want    string
	}{
		{"KAFKA_ property", []string{"KAFKA_ACKS=x"}, acks,
			`KAFKA_ACKS: kafka."acks": want all, 1 or 0, got "x"`},
		{"KAFKA_ property, bare key", []string{"KAFKA_ACKS=x"}, errors.New(`kafka.acks: bad`),
			`KAFKA_ACKS: kafka.acks: bad`},
		{"MIFFY_ property", []string{"MIFFY_KAFKA__ACKS=x"}, acks,
			`MIFFY_KAFKA__ACKS: kafka."acks": want all, 1 or 0, got "x"`},
		{"KAFKA_ wins over MIFFY_", []string{"MIFFY_KAFKA__ACKS=1", "KAFKA_ACKS=x"}, acks,
			`KAFKA_ACKS: kafka."acks": want all, 1 or 0, got "x"`},
		{"alias", []string{"KAFKA_REQUEST_REQUIRED_ACKS=x"}, acks,
			`KAFKA_REQUEST_REQUIRED_ACKS: kafka."acks": want all, 1 or 0, got "x"`},
		{"dotted property", []string{"KAFKA_SASL_MECHANISM=MD5"}, errors.New(`kafka."sasl.mechanism": want PLAIN`),
			`KAFKA_SASL_MECHANISM: kafka."sasl.mechanism": want PLAIN`},
		{"set in the file", []string{"KAFKA_CLIENT_ID=x"}, acks, acks.Error()},
		{"another key that starts the same", []string{"KAFKA_ACKS=all"}, errors.New(`kafka."acks.extra": no`),
			`kafka."acks.extra": no`},
		{"several", []string{"KAFKA_ACKS=x", "KAFKA_LINGER_MS=soon"},
			errors.Join(acks, errors.New(`kafka."linger.ms": want a number`)),
			"KAFKA_ACKS: kafka.\"acks\": want all, 1 or 0, got \"x\"\nKAFKA_LINGER_MS: kafka.\"linger.ms\": want a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NameVariables(tt.environ, tt.err)
			if got == nil || got.Error() != tt.want {
				t.Errorf("NameVariables = %v, want %s", got, tt.want)
			}
		})
	}
	if err := NameVariables([]string{"KAFKA_ACKS=x"}, nil); err != nil {
		t.Errorf("NameVariables(nil) = %v", err)
	}
	if got := NameVariables([]string{"KAFKA_ACKS=x"}, acks); !errors.Is(got, acks) {
		t.Errorf("NameVariables does not wrap the error: %v", got)
	}
}
