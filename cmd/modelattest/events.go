package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/referrers"
)

// eventFlagsFlush bounds how long a command waits on exit for queued events.
const eventFlagsFlush = 5 * time.Second

// eventFlags are the --events* flags shared by every command that decides.
// Each falls back to its MODELATTEST_EVENTS* variable; collector headers
// (tokens) come only from $MODELATTEST_EVENTS_HEADERS, never from a flag
// that would show in ps.
type eventFlags struct {
	cfg   events.Config
	sink  events.Sink
	start time.Time
}

func (f *eventFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.cfg.File, "events", "", "write a decision event (JSON lines) to FILE, or - for stdout ($"+events.EnvFile+")")
	fs.StringVar(&f.cfg.URL, "events-url", "", "POST decision events to this collector URL ($"+events.EnvURL+"; headers such as Authorization from $"+events.EnvHeaders+")")
	fs.StringVar((*string)(&f.cfg.Format), "events-format", "", "body of --events-url: cloudevents, cloudevents-batch, splunk-hec ($"+events.EnvFormat+"; default cloudevents)")
	fs.StringVar(&f.cfg.CAFile, "events-ca-file", "", "PEM file of CA certificates for the collector ($"+events.EnvCAFile+")")
	fs.StringVar(&f.cfg.CertFile, "events-cert", "", "client certificate for mTLS to the collector ($"+events.EnvCert+")")
	fs.StringVar(&f.cfg.KeyFile, "events-key", "", "client key for --events-cert ($"+events.EnvKey+")")
}

// open merges flags over the environment and opens the sinks. format is the
// command's --format: events on stdout and a JSON report cannot share it.
func (f *eventFlags) open(cmd *cobra.Command, format string) error {
	f.start = time.Now()
	env, err := events.ConfigFromEnv(os.LookupEnv)
	if err != nil {
		return usageError{err}
	}
	c := f.cfg
	for _, p := range []struct{ flag, env *string }{{&c.File, &env.File}, {&c.URL, &env.URL}, {(*string)(&c.Format), (*string)(&env.Format)},
		{&c.CAFile, &env.CAFile}, {&c.CertFile, &env.CertFile}, {&c.KeyFile, &env.KeyFile}} {
		if *p.flag == "" {
			*p.flag = *p.env
		}
	}
	c.Headers = env.Headers
	if c.File == "-" && format == "json" {
		return usageError{fmt.Errorf("--events - and --format json would both write to stdout: write the events to a file")}
	}
	if c.URL == "" && (f.cfg.Format != "" || f.cfg.CAFile != "" || f.cfg.CertFile != "" || f.cfg.KeyFile != "") {
		return usageError{fmt.Errorf("--events-format, --events-ca-file, --events-cert and --events-key need --events-url")}
	}
	switch c.Format {
	case "", events.FormatCloudEvents, events.FormatCloudEventsBatch, events.FormatSplunkHEC:
	default:
		return usageError{fmt.Errorf("--events-format %q: want cloudevents, cloudevents-batch or splunk-hec", c.Format)}
	}
	f.sink, err = events.Open(c, cmd.OutOrStdout())
	return err
}

// options fill what a report does not say: the face, the reference as
// typed, the local user, how long the command took.
func (f *eventFlags) options(face events.Face, ref string) events.Options {
	o := events.Options{Face: face, Reference: ref, Duration: time.Since(f.start), Version: version}
	if u, err := user.Current(); err == nil {
		o.Actor = &events.Actor{User: &events.User{Name: u.Username, UID: u.Uid, Type: "User"}}
	}
	return o
}

// record emits the decision: the report when there is one, else the error
// that kept a decision from being reached. No sink, no work.
func (f *eventFlags) record(face events.Face, ref, repository string, dgst digest.Digest, rep *referrers.Report, err error) {
	if f.sink == nil || (rep == nil && err == nil) {
		return
	}
	if rep != nil {
		f.sink.Emit(events.FromReport(rep, f.options(face, ref)))
		return
	}
	f.sink.Emit(events.FromError(repository, dgst, err, f.options(face, ref)))
}

// close flushes queued events for a bounded time and says on stderr what
// could not be delivered; it never changes the command's exit code.
func (f *eventFlags) close(cmd *cobra.Command) {
	if f.sink == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), eventFlagsFlush)
	defer cancel()
	if err := f.sink.Close(ctx); err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "WARNING:", err)
	}
}
