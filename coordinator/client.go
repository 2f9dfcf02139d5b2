package coordinator

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cofactor-ml/cofactor/internal/job"
)

// Client talks to the coordinators' HTTP API. It tries its URLs in turn
// until one answers; an answer with an error status is final (it came from
// a live coordinator, which forwards writes to the leader itself).
type Client struct {
	URLs []string
	HTTP *http.Client
	// Patience is how long a call keeps trying while no coordinator
	// answers or none knows a leader (an election takes a second or two).
	Patience time.Duration
	// Token, when set, is sent as "Authorization: Bearer Token".
	Token string
}

// UseTLS makes the client trust cfg's roots (a private CA) for https URLs;
// nil keeps the system roots.
func (c *Client) UseTLS(cfg *tls.Config) {
	if cfg == nil {
		return
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	// A copy: an http.Transport writes to its TLS configuration (HTTP/2
	// protocols), so one must not be shared between transports.
	t.TLSClientConfig = cfg.Clone()
	c.HTTP.Transport = t
}

// NewClient returns a client for the given base URLs (http://host:port).
func NewClient(urls ...string) *Client {
	var clean []string
	for _, u := range urls {
		for _, part := range strings.Split(u, ",") {
			if part = strings.TrimSpace(part); part != "" {
				if !strings.Contains(part, "://") {
					part = "http://" + part
				}
				clean = append(clean, strings.TrimRight(part, "/"))
			}
		}
	}
	return &Client{URLs: clean, HTTP: &http.Client{Timeout: 2 * MaxWait}, Patience: 20 * time.Second}
}

// SetConnectTimeout bounds how long connecting to one coordinator may
// take (an address that drops packets would otherwise hold a call for the
// system's TCP timeout, minutes). Call it after UseTLS.
func (c *Client) SetConnectTimeout(d time.Duration) {
	t, ok := c.HTTP.Transport.(*http.Transport)
	if !ok || t == nil {
		t = http.DefaultTransport.(*http.Transport).Clone()
	}
	t.DialContext = (&net.Dialer{Timeout: d, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = d
	c.HTTP.Transport = t
}

// ErrUnreachable: no URL answered.
var ErrUnreachable = errors.New("no coordinator answered")

// do sends one request, trying the URLs in turn, and again after a pause
// while none answers or none knows a leader, for up to Patience.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	start := time.Now()
	deadline := start.Add(c.Patience)
	for {
		err := c.once(ctx, method, path, body, out)
		if !errors.Is(err, ErrUnreachable) {
			return err
		}
		if time.Now().After(deadline) {
			var ue *unreachable
			if errors.As(err, &ue) && len(ue.tried) > 0 {
				ue.after = time.Since(start).Round(100 * time.Millisecond)
			}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (c *Client) once(ctx context.Context, method, path string, body, out any) error {
	if len(c.URLs) == 0 {
		return fmt.Errorf("%w: no coordinator URL given", ErrUnreachable)
	}
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return err
		}
	}
	ue := &unreachable{}
	for _, base := range c.URLs {
		req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(data))
		if err != nil {
			return err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.Token != "" {
			req.Header.Set("Authorization", "Bearer "+c.Token)
		}
		resp, err := c.HTTP.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			ue.add(base, err)
			continue
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			ue.add(base, err)
			continue
		}
		if resp.StatusCode >= 300 {
			var ae APIError
			if json.Unmarshal(b, &ae) != nil || ae.Message == "" {
				// Not an answer of the API: say who gave it.
				body := strings.TrimSpace(string(b))
				if len(body) > 200 {
					body = body[:200] + "…"
				}
				ae.Message = fmt.Sprintf("%s answered %d %s (%q): is it a cofactor coordinator?", base, resp.StatusCode, http.StatusText(resp.StatusCode), body)
			}
			ae.Status = resp.StatusCode
			if resp.StatusCode == http.StatusServiceUnavailable {
				ue.add(base, errors.New(ae.Message))
				continue // another coordinator may know a leader
			}
			return &ae
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				return fmt.Errorf("answer of %s: %w", base, err)
			}
		}
		return nil
	}
	return ue
}

// unreachable is ErrUnreachable with what each URL answered.
type unreachable struct {
	tried, why []string
	after      time.Duration // how long the client kept trying
}

func (u *unreachable) add(base string, err error) {
	// A *url.Error repeats the method and URL; its cause is what matters.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	u.tried = append(u.tried, base)
	u.why = append(u.why, base+": "+err.Error())
}

func (u *unreachable) Error() string {
	within := ""
	if u.after > 0 {
		within = fmt.Sprintf(" within %v", u.after)
	}
	return fmt.Sprintf("%s%s (tried %s): %s", ErrUnreachable, within, strings.Join(u.tried, ", "), strings.Join(u.why, "; "))
}

func (u *unreachable) Unwrap() error { return ErrUnreachable }

func (c *Client) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

// Submit submits a job and returns its ID. Without a JobID in req the
// client picks one, so that a retry after a lost answer cannot submit the
// job twice: the retry finds its own ID taken and reports success.
func (c *Client) Submit(ctx context.Context, req SubmitRequest) (string, error) {
	chosen := req.JobID == ""
	if chosen {
		req.JobID = NewJobID()
	}
	var resp SubmitResponse
	deadline := time.Now().Add(c.Patience)
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, http.MethodPost, "/v1/jobs", req, &resp)
		var ae *APIError
		switch {
		case err == nil:
			return resp.JobID, nil
		case chosen && attempt > 0 && errors.As(err, &ae) && strings.Contains(ae.Message, ErrDuplicate.Error()):
			return req.JobID, nil // an earlier attempt was committed
		case !errors.Is(err, ErrUnreachable) || time.Now().After(deadline):
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Job returns a job's current result.
func (c *Client) Job(ctx context.Context, id string) (*job.Result, error) {
	var r job.Result
	err := c.get(ctx, "/v1/jobs/"+url.PathEscape(id), &r)
	return &r, err
}

// unknownJobGrace is how long Wait keeps asking about a job the
// coordinators answer they do not know.
const unknownJobGrace = 10 * time.Second

// Wait polls until the job finishes or ctx ends. progress, if not nil, is
// called with each intermediate result.
func (c *Client) Wait(ctx context.Context, id string, progress func(*job.Result)) (*job.Result, error) {
	var unknownSince time.Time
	for {
		var r job.Result
		err := c.get(ctx, "/v1/jobs/"+url.PathEscape(id)+"/wait?timeout=2s", &r)
		if err != nil {
			var ae *APIError
			if errors.As(err, &ae) && ae.Status == http.StatusNotFound && ctx.Err() == nil {
				// During a leader change the node answering may be a
				// follower that has not applied the job's submit yet:
				// ask again for a while before believing it.
				if unknownSince.IsZero() {
					unknownSince = time.Now()
				}
				if time.Since(unknownSince) < unknownJobGrace {
					select {
					case <-ctx.Done():
						return nil, ctx.Err()
					case <-time.After(500 * time.Millisecond):
					}
					continue
				}
			}
			if errors.As(err, &ae) || ctx.Err() != nil {
				return nil, err
			}
			// All coordinators unreachable for now (a restart): keep trying.
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		if job.Finished(r.State) {
			return &r, nil
		}
		if progress != nil {
			progress(&r)
		}
	}
}

// Jobs lists the jobs.
func (c *Client) Jobs(ctx context.Context) (*JobList, error) {
	var l JobList
	err := c.get(ctx, "/v1/jobs", &l)
	return &l, err
}

// Cancel cancels a job.
func (c *Client) Cancel(ctx context.Context, id string) (*job.Result, error) {
	var r job.Result
	err := c.do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/cancel", nil, &r)
	return &r, err
}

// Cluster returns the cluster's status.
func (c *Client) Cluster(ctx context.Context) (*ClusterStatus, error) {
	var s ClusterStatus
	err := c.get(ctx, "/v1/cluster", &s)
	return &s, err
}

// Join asks the cluster to add a coordinator as a voter.
func (c *Client) Join(ctx context.Context, s ServerInfo) error {
	return c.do(ctx, http.MethodPost, "/v1/cluster/join", s, nil)
}

// Config returns where the cluster keeps its snapshots.
func (c *Client) Config(ctx context.Context) (*ClientConfig, error) {
	var cfg ClientConfig
	err := c.get(ctx, "/v1/config", &cfg)
	return &cfg, err
}

// AddSchedule creates a schedule.
func (c *Client) AddSchedule(ctx context.Context, req ScheduleRequest) error {
	return c.do(ctx, http.MethodPost, "/v1/schedules", req, nil)
}

// Schedules lists the schedules.
func (c *Client) Schedules(ctx context.Context) (*ScheduleList, error) {
	var l ScheduleList
	err := c.get(ctx, "/v1/schedules", &l)
	return &l, err
}

// ScheduleAction removes ("rm"), pauses or resumes a schedule.
func (c *Client) ScheduleAction(ctx context.Context, name, action string) error {
	p := "/v1/schedules/" + url.PathEscape(name)
	switch action {
	case "rm":
		return c.do(ctx, http.MethodDelete, p, nil, nil)
	case "pause", "resume":
		return c.do(ctx, http.MethodPost, p+"/"+action, nil, nil)
	}
	return fmt.Errorf("unknown schedule action %q", action)
}

// RemoveServer removes a coordinator from the raft group.
func (c *Client) RemoveServer(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/v1/cluster/remove", RemoveRequest{ID: id}, nil)
}

// DrainWorker keeps a worker out of assignments ("drain") or lets it back
// ("undrain").
func (c *Client) DrainWorker(ctx context.Context, id, action string) error {
	return c.do(ctx, http.MethodPost, "/v1/workers/"+url.PathEscape(id)+"/"+action, nil, nil)
}

// Logs returns a job's event log.
func (c *Client) Logs(ctx context.Context, id string) (*JobLogs, error) {
	var l JobLogs
	err := c.get(ctx, "/v1/jobs/"+url.PathEscape(id)+"/logs", &l)
	return &l, err
}
