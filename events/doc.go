// Package events turns verification decisions into one JSON event type,
// shared by every place that decides (verify, verified pull, admission,
// runtime verify, the key broker and audit), and delivers those events to
// files and HTTP collectors.
//
// An Event is a CloudEvents 1.0 envelope of type
// dev.modelattest.decision.v1 whose data is an OCSF Compliance Finding
// (class 2003). FromReport builds one from a referrers.Report in one call;
// FromError builds one for a decision that could not be reached. The shape
// is fixed by decision.schema.json and described in docs/EVENTS.md.
//
// Sinks never hold up a decision: an HTTPSink queues, batches and retries in
// the background and counts what it cannot deliver as dropped. Nothing in an
// event comes from credentials: events are built from reports, references
// and the options the caller passes, never from registry or collector
// settings.
package events
