package registry

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"strconv"

	"github.com/sirupsen/logrus"
)

// The distribution registry logs through logrus, taking the logger from a
// context value under a key type of its internal dcontext package, and
// otherwise from logrus's process-wide standard logger. To keep its logs
// out of that global, every context it receives carries a logger of ours
// under that key; the key is recognised by its type's package and name,
// since the package cannot be imported. TestDistributionLogsToConfigLogger
// checks that this still reaches distribution's request logs.
const (
	dcontextPkg       = "github.com/distribution/distribution/v3/internal/dcontext"
	dcontextLoggerKey = "loggerKey"
)

// loggerContext answers distribution's logger lookups with entry.
type loggerContext struct {
	context.Context
	entry *logrus.Entry
}

func (c loggerContext) Value(key any) any {
	if t := reflect.TypeOf(key); t != nil && t.Name() == dcontextLoggerKey && t.PkgPath() == dcontextPkg {
		return c.entry
	}
	return c.Context.Value(key)
}

// distributionLogger is a logrus logger of its own (not the standard one)
// that hands every entry to log.
func distributionLogger(log *slog.Logger) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.DebugLevel)
	l.AddHook(slogHook{log})
	return logrus.NewEntry(l)
}

// slogHook forwards logrus entries to a slog logger, fields as attributes.
type slogHook struct{ log *slog.Logger }

func (slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h slogHook) Fire(e *logrus.Entry) error {
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	lvl := slogLevel(e)
	if !h.log.Enabled(ctx, lvl) {
		return nil
	}
	attrs := make([]slog.Attr, 0, len(e.Data))
	for k, v := range e.Data {
		if err, ok := v.(error); ok {
			v = err.Error()
		}
		attrs = append(attrs, slog.Any(k, v))
	}
	h.log.LogAttrs(ctx, lvl, e.Message, attrs...)
	return nil
}

// slogLevel maps a logrus level to slog's. distribution logs every request
// that ends in an error response as an error, but a 404 to a HEAD is how a
// client asks "do you have it": a response under 500 is debug. Its info
// logs (each request served, its start-up notes) are debug too: at info
// the registry says what it does in its own words (listening, index).
func slogLevel(e *logrus.Entry) slog.Level {
	switch e.Level {
	case logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel:
		if status, ok := e.Data["http.response.status"]; ok {
			if n, err := strconv.Atoi(toString(status)); err == nil && n < 500 {
				return slog.LevelDebug
			}
		}
		return slog.LevelError
	case logrus.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelDebug
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case int:
		return strconv.Itoa(x)
	case string:
		return x
	}
	return ""
}
