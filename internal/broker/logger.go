package broker

import (
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"
)

// logger passes kfake's log lines to zerolog. kfake logs every request at
// its info level, so that becomes debug here.
type logger struct {
	log zerolog.Logger
}

func (l logger) Logf(level kfake.LogLevel, format string, args ...any) {
	var ev *zerolog.Event
	switch level {
	case kfake.LogLevelError:
		ev = l.log.Error()
	case kfake.LogLevelWarn:
		ev = l.log.Warn()
	case kfake.LogLevelInfo:
		ev = l.log.Debug()
	case kfake.LogLevelDebug:
		ev = l.log.Trace()
	default:
		return
	}
	ev.Msgf(format, args...)
}
