// Package audit verifies every model in repositories, whole registries or
// OCI layouts against a policy and writes the evidence an auditor reads:
// report.json (schema'd), report.md, a self-contained report.html with each
// model's referrer graph, the decision events, the policy and its digest,
// and, with a key, a signed verification summary per model and a signed
// SHA256SUMS of the whole folder.
//
// Each digest is verified once; tags that share it are reported together.
// Registry etiquette: bounded concurrency, an optional request rate, and
// 429/Retry-After honoured by the transport's retries.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/graph"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// ReportVersion names the shape of report.json (audit/report.schema.json).
const ReportVersion = "modelattest.audit/v1"

// Options configure Run. Policy is required; every other zero value is
// documented on its field.
type Options struct {
	// Policy decides every model.
	Policy *referrers.Policy
	// Remote says how to reach registries (zero: HTTPS, Docker config).
	// Its HTTPClient, when set, is wrapped, not replaced.
	Remote oras.RemoteOptions
	// Layout makes every target an OCI layout directory.
	Layout bool
	// Concurrency bounds the models verified at once (zero: 4).
	Concurrency int
	// MaxRPS bounds registry requests per second across the run (zero:
	// unlimited).
	MaxRPS float64
	// RunID correlates the run's events (zero: a new UUID).
	RunID string
	// Sink also receives every decision event (zero: none; the events are
	// in the report either way).
	Sink events.Sink
	// Controls maps requirements to control ids (zero: none).
	Controls *Controls
	// Now is the time maxAge is measured against (zero: time.Now).
	Now time.Time
	// Version is the product version put in events (zero: omitted).
	Version string
	// Progress, when set, is called after each model is verified.
	Progress func(done, total int)
}

// Report is report.json.
type Report struct {
	Version    string        `json:"version"`
	RunID      string        `json:"runId"`
	StartedAt  time.Time     `json:"startedAt"`
	FinishedAt time.Time     `json:"finishedAt"`
	Policy     digest.Digest `json:"policyDigest"`
	Targets    []string      `json:"targets"`
	Controls   string        `json:"controls,omitempty"`
	Summary    Summary       `json:"summary"`
	Models     []*Model      `json:"models"`
	Problems   []Problem     `json:"problems"`
	// Requests counts the registry requests the run made.
	Requests int64 `json:"requests"`
	// Events are the decision events, one per model (events.jsonl).
	Events []events.Event `json:"-"`
}

// Summary counts the run.
type Summary struct {
	Repositories int `json:"repositories"`
	Tags         int `json:"tags"`
	Models       int `json:"models"`
	Passed       int `json:"passed"`
	Failed       int `json:"failed"`
	Errors       int `json:"errors"`
}

// Problem is a target, repository or tag the audit could not read.
type Problem struct {
	Target string `json:"target"`
	Error  string `json:"error"`
}

// Model is one digest in one repository, with every tag that names it.
type Model struct {
	Repository     string               `json:"repository"`
	Digest         digest.Digest        `json:"digest"`
	Tags           []string             `json:"tags"`
	Verdict        string               `json:"verdict"`
	Allowed        bool                 `json:"allowed"`
	Rule           int                  `json:"rule"`
	Mode           string               `json:"mode,omitempty"`
	Signers        []string             `json:"signers"`
	PredicateTypes []string             `json:"predicateTypes"`
	Builders       []string             `json:"builders"`
	Datasets       []string             `json:"datasets"`
	Requirements   []events.Requirement `json:"requirements"`
	Controls       []ControlResult      `json:"controls,omitempty"`
	Referrers      int                  `json:"referrers"`
	Graph          *graph.Graph         `json:"graph"`
	EventID        string               `json:"eventId"`
	Error          string               `json:"error,omitempty"`
	// VSA is the file of the signed verification summary (with a key).
	VSA string `json:"vsa,omitempty"`

	report *referrers.Report
}

// Failed says whether any model failed or could not be verified, or any
// target could not be read.
func (r *Report) Failed() bool { return r.Summary.Failed > 0 }

// Incomplete says whether part of the audit could not run.
func (r *Report) Incomplete() bool { return r.Summary.Errors > 0 || len(r.Problems) > 0 }

// fallbackTag matches the tags registries without the Referrers API use to
// hold referrers (OCI tag schema, cosign's legacy .sig/.att/.sbom): they
// are not models.
var fallbackTag = regexp.MustCompile(`^sha256-[0-9a-f]{64}(\.sig|\.att|\.sbom)?$`)

// repo is one repository to audit.
type repo struct {
	name   string // what the policy matches
	target *oras.Target
}

// Run audits the targets: a repository (host/repo: every tag), a registry
// (host: every repository in its catalog), or, with Options.Layout, an OCI
// layout directory. It returns the report; an error only when nothing
// could be audited (bad options, cancelled).
func Run(ctx context.Context, targets []string, o Options) (*Report, error) {
	if o.Policy == nil {
		return nil, errors.New("audit: no policy")
	}
	if len(targets) == 0 {
		return nil, errors.New("audit: no target")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.RunID == "" {
		o.RunID = events.NewID()
	}
	now := o.Now
	rep := &Report{Version: ReportVersion, RunID: o.RunID, StartedAt: time.Now().UTC(), Policy: o.Policy.Digest,
		Targets: targets, Models: []*Model{}, Problems: []Problem{}}
	if o.Controls != nil {
		rep.Controls = o.Controls.Framework
	}
	counter, err := newTransport(o.Remote, o.MaxRPS)
	if err != nil {
		return nil, err
	}
	ropts := o.Remote
	ropts.HTTPClient = counter.client()

	repos, problems := enumerate(ctx, targets, o.Layout, ropts)
	rep.Problems = append(rep.Problems, problems...)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep.Summary.Repositories = len(repos)

	// Resolve every tag once; group tags by digest within a repository.
	type key struct {
		repo   string
		digest digest.Digest
	}
	models := map[key]*Model{}
	descs := map[key]ocispec.Descriptor{}
	var order []key
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Concurrency)
	for _, r := range repos {
		tags, err := listTags(gctx, r.target)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			rep.Problems = append(rep.Problems, Problem{Target: r.name, Error: err.Error()})
			continue
		}
		for _, tag := range tags {
			g.Go(func() error {
				desc, err := r.target.Resolve(gctx, tag)
				mu.Lock()
				defer mu.Unlock()
				rep.Summary.Tags++
				if err != nil {
					if gctx.Err() != nil {
						return gctx.Err()
					}
					rep.Problems = append(rep.Problems, Problem{Target: r.name + ":" + tag, Error: err.Error()})
					return nil
				}
				k := key{r.name, desc.Digest}
				m := models[k]
				if m == nil {
					m = &Model{Repository: r.name, Digest: desc.Digest}
					models[k] = m
					descs[k] = desc
					order = append(order, k)
				}
				m.Tags = append(m.Tags, tag)
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].repo != order[j].repo {
			return order[i].repo < order[j].repo
		}
		return firstTag(models[order[i]]) < firstTag(models[order[j]])
	})
	targetOf := map[string]*oras.Target{}
	for _, r := range repos {
		targetOf[r.name] = r.target
	}

	// Verify each digest once, bounded.
	done := 0
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(o.Concurrency)
	for _, k := range order {
		m := models[k]
		sort.Strings(m.Tags)
		rep.Models = append(rep.Models, m)
		g.Go(func() error {
			start := time.Now()
			vrep, err := referrers.VerifyModel(gctx, targetOf[k.repo], k.repo, descs[k], o.Policy, referrers.VerifyOptions{Now: now})
			if gctx.Err() != nil {
				return gctx.Err()
			}
			eo := events.Options{Face: events.FaceAudit, Reference: reference(m), CorrelationID: o.RunID, Duration: time.Since(start), Version: o.Version}
			var ev events.Event
			if vrep == nil {
				ev = events.FromError(k.repo, k.digest, err, eo)
			} else {
				ev = events.FromReport(vrep, eo)
			}
			fill(m, vrep, ev, o.Controls)
			if o.Sink != nil {
				o.Sink.Emit(ev)
			}
			mu.Lock()
			rep.Events = append(rep.Events, ev)
			done++
			if o.Progress != nil {
				o.Progress(done, len(order))
			}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Slice(rep.Events, func(i, j int) bool { return rep.Events[i].Subject < rep.Events[j].Subject })
	for _, m := range rep.Models {
		rep.Summary.Models++
		switch m.Verdict {
		case events.VerdictPass:
			rep.Summary.Passed++
		case events.VerdictFail:
			rep.Summary.Failed++
		default:
			rep.Summary.Errors++
		}
	}
	rep.Requests = counter.requests.Load()
	rep.FinishedAt = time.Now().UTC()
	return rep, nil
}

func firstTag(m *Model) string {
	if len(m.Tags) == 0 {
		return ""
	}
	s := append([]string(nil), m.Tags...)
	sort.Strings(s)
	return s[0]
}

func reference(m *Model) string {
	return m.Repository + "@" + m.Digest.String()
}

// fill copies the decision into the model: the verdict and what counted
// come from the event, so report.json and events.jsonl cannot disagree.
func fill(m *Model, rep *referrers.Report, ev events.Event, c *Controls) {
	u := ev.Data.Unmapped
	m.Verdict, m.Allowed, m.Rule, m.Mode = u.Verdict, u.Allowed, u.Policy.Rule, u.Policy.Mode
	m.Signers, m.PredicateTypes, m.Requirements, m.Error = u.Signers, u.PredicateTypes, u.Requirements, u.Error
	m.EventID = ev.ID
	m.Builders, m.Datasets = []string{}, []string{}
	m.report = rep
	if rep == nil {
		m.Graph = &graph.Graph{Nodes: []graph.Node{{Digest: m.Digest, Kind: graph.KindModel, Label: m.Repository}}, Edges: []graph.Edge{}}
		return
	}
	m.Referrers = len(rep.Referrers)
	m.Graph = graph.FromReport(m.Repository, rep)
	if m.Graph.Edges == nil {
		m.Graph.Edges = []graph.Edge{}
	}
	builders, datasets := map[string]bool{}, map[string]bool{}
	for i := range rep.Referrers {
		f := &rep.Referrers[i]
		st := f.Statement()
		if f.Verdict != "verified" || st == nil || st.PredicateType != referrers.PredicateSLSAProvenance {
			continue
		}
		var p struct {
			BuildDefinition struct {
				ResolvedDependencies []struct {
					URI string `json:"uri"`
				} `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
			RunDetails struct {
				Builder struct {
					ID string `json:"id"`
				} `json:"builder"`
			} `json:"runDetails"`
		}
		if json.Unmarshal(st.Predicate, &p) != nil {
			continue
		}
		if p.RunDetails.Builder.ID != "" {
			builders[p.RunDetails.Builder.ID] = true
		}
		for _, d := range p.BuildDefinition.ResolvedDependencies {
			if d.URI != "" {
				datasets[d.URI] = true
			}
		}
	}
	for b := range builders {
		m.Builders = append(m.Builders, b)
	}
	for d := range datasets {
		m.Datasets = append(m.Datasets, d)
	}
	sort.Strings(m.Builders)
	sort.Strings(m.Datasets)
	if c != nil {
		m.Controls = c.Evaluate(m.Requirements)
	}
}

// enumerate turns targets into repositories: a layout is one, a
// repository is one, a registry host is every repository its catalog lists.
func enumerate(ctx context.Context, targets []string, layout bool, ropts oras.RemoteOptions) ([]repo, []Problem) {
	var repos []repo
	var problems []Problem
	seen := map[string]bool{}
	add := func(name string, t *oras.Target) {
		if !seen[name] {
			seen[name] = true
			repos = append(repos, repo{name: name, target: t})
		}
	}
	for _, tg := range targets {
		if layout {
			t, err := oras.OpenLayout(tg)
			if err != nil {
				problems = append(problems, Problem{Target: tg, Error: err.Error()})
				continue
			}
			add(t.PolicyName(), t) // the name VerifyModel matches: the canonical path
			continue
		}
		tg = strings.TrimSuffix(tg, "/")
		if !strings.Contains(tg, "/") {
			names, err := catalog(ctx, tg, ropts)
			if err != nil {
				problems = append(problems, Problem{Target: tg, Error: fmt.Sprintf("catalog: %v (registries without a catalog, such as ECR, GHCR and Docker Hub, need --repositories FILE)", err)})
				continue
			}
			for _, n := range names {
				t, err := oras.OpenRemote(ctx, tg+"/"+n, ropts)
				if err != nil {
					problems = append(problems, Problem{Target: tg + "/" + n, Error: err.Error()})
					continue
				}
				add(t.PolicyName(), t)
			}
			continue
		}
		t, err := oras.OpenRemote(ctx, tg, ropts)
		if err != nil {
			problems = append(problems, Problem{Target: tg, Error: err.Error()})
			continue
		}
		add(t.PolicyName(), t)
	}
	return repos, problems
}

// catalog lists a registry's repositories through /v2/_catalog.
func catalog(ctx context.Context, host string, ropts oras.RemoteOptions) ([]string, error) {
	// A repository client carries the auth and transport; the registry
	// client shares them.
	r, err := oras.NewRepository(ctx, host+"/catalog", ropts)
	if err != nil {
		return nil, err
	}
	reg := &remote.Registry{}
	reg.Reference = registry.Reference{Registry: host}
	reg.PlainHTTP = r.PlainHTTP
	reg.Client = r.Client
	reg.RepositoryListPageSize = 1000
	var names []string
	err = reg.Repositories(ctx, "", func(page []string) error {
		names = append(names, page...)
		if len(names) > 100000 {
			return errors.New("more than 100000 repositories")
		}
		return nil
	})
	return names, err
}

// listTags lists a repository's tags, without the referrer fallback tags.
func listTags(ctx context.Context, t *oras.Target) ([]string, error) {
	tl, ok := t.GraphTarget.(registry.TagLister)
	if !ok {
		return nil, fmt.Errorf("%s cannot list tags", t.Name)
	}
	var tags []string
	err := tl.Tags(ctx, "", func(page []string) error {
		for _, tag := range page {
			if !fallbackTag.MatchString(tag) {
				tags = append(tags, tag)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", t.Name, err)
	}
	sort.Strings(tags)
	return tags, nil
}
