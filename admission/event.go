package admission

import (
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/referrers"
)

// reviewEvents collects the decision events of one review (one per model
// reference, in the shared format of verify and pull), correlated by the
// admission request UID. They are emitted once the answer is known.
type reviewEvents struct {
	req   *admissionv1.AdmissionRequest
	start time.Time
	list  []pendingEvent
}

type pendingEvent struct {
	ref    *modelRef
	digest digest.Digest
	report *referrers.Report
	err    error
	// exemption, when set, admitted the model unverified.
	exemption *Exemption
	// object names the request's object when ref is nil: the object could
	// not be read for model references (err says why).
	object string
}

func (e *reviewEvents) add(p pendingEvent) { e.list = append(e.list, p) }

// emit sends the events to sink (nil: none). resp is the answer the API
// server gets: every event agrees with it, so a model that passed but was
// refused with its request (not pinned, or another model failed) is
// reported refused, with the answer's reason.
func (e *reviewEvents) emit(sink events.Sink, version string, resp *admissionv1.AdmissionResponse) {
	if sink == nil {
		return
	}
	refused := ""
	if !resp.Allowed {
		refused = "the request was denied"
		if resp.Result != nil && resp.Result.Message != "" {
			refused = resp.Result.Message
		}
	}
	now := time.Now()
	opts := events.Options{Face: events.FaceAdmission, CorrelationID: string(e.req.UID), Duration: now.Sub(e.start),
		Time: now, Actor: actorOf(e.req.UserInfo.Username, e.req.UserInfo.UID), Version: version}
	for _, p := range e.list {
		o := opts
		if p.ref == nil { // the object itself could not be read: no model to name
			o.Reference = p.object
			sink.Emit(events.FromError("", "", p.err, o))
			continue
		}
		o.Reference = p.ref.Value
		switch {
		case p.exemption != nil:
			// Admitted unverified: an audit-mode failure that names the
			// exemption, never a silent pass.
			rep := &referrers.Report{Repository: p.ref.Repository, Model: ocispec.Descriptor{Digest: p.digest}, Rule: -1, Mode: referrers.ModeAudit,
				Requirements: []referrers.Requirement{{What: "exemption " + p.exemption.Name,
					Reason: "admitted unverified under the policy's exemption: " + p.exemption.Reason}}}
			sink.Emit(events.FromReport(rep, o))
		case p.err != nil:
			sink.Emit(events.FromError(p.ref.Repository, p.digest, p.err, o))
		default:
			if refused != "" && (p.report.Passed || p.report.Mode != referrers.ModeEnforce) {
				o.Refused = refused
			}
			sink.Emit(events.FromReport(p.report, o))
		}
	}
}

func actorOf(username, uid string) *events.Actor {
	if username == "" {
		return nil
	}
	typ := "User"
	if strings.HasPrefix(username, "system:") {
		typ = "System"
	}
	return &events.Actor{User: &events.User{Name: username, UID: uid, Type: typ}, AppName: "kube-apiserver"}
}
