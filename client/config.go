package client

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dlog-io/dlog"
)

// Config configures a Client. Start from DefaultConfig; New applies the
// defaults of zero fields.
type Config struct {
	// Servers are proxy addresses (host:port) to start from. Required.
	// With discovery the client learns every live proxy from them.
	Servers []string
	// Namespace the client's logs live in; "" means the proxies' default
	// namespace ("default").
	Namespace string
	// DiscoveryInterval is how often the client refreshes the list of live
	// proxies (AdminService.ListProxies). Negative disables discovery: the
	// client uses Servers only. Default 30 s.
	DiscoveryInterval time.Duration
	// VirtualNodes is the number of points per proxy on the
	// consistent-hash ring; more spread logs more evenly. Default 100.
	VirtualNodes int
	// MaxRedirects bounds the redirects one call follows. Default 8.
	MaxRedirects int
	// MaxAttempts bounds the proxies one call tries (redirects, proxies
	// that refuse the log, retries after failures). Default 16.
	MaxAttempts int
	// Blackout is how long a proxy that could not be reached is skipped.
	// Default 10 s.
	Blackout time.Duration
	// RetryBackoffMin and RetryBackoffMax bound the pause between retries
	// after failures (doubling). Defaults 20 ms and 1 s.
	RetryBackoffMin, RetryBackoffMax time.Duration
	// AttemptTimeout bounds one attempt of a unary call when ctx allows
	// longer, so that a proxy that stopped answering does not hold the
	// call until ctx ends: the attempt fails (indeterminate) and, where
	// safe, the call goes on elsewhere. 0 disables. Default 30 s.
	AttemptTimeout time.Duration
	// Idempotence makes Write and WriteBulk tag records that carry no tag
	// of their own with a producer id of this client and a sequence, and
	// retry them after indeterminate failures (another proxy, after a
	// failover): the proxy answers a retry of a write that is already in
	// the log with its original DLSN. Without it a write that fails
	// indeterminately is returned to the caller as is. Default true.
	Idempotence bool
	// BatchWrites sends the untagged Writes of one log that are in flight
	// at the same time as WriteBulk requests (each record keeps its own
	// outcome): under load one request carries many records instead of
	// one each. A Write is sent at once while fewer than BatchesInFlight
	// requests of its log are in flight; otherwise it waits for one to
	// return and goes with the next, of at most MaxBatchRecords records and
	// MaxBatchBytes bytes (and half of MaxMessageBytes). Defaults true,
	// 4, 1000 and 1 MiB. Writes tagged
	// by the caller (Record.ProducerID) are never batched.
	BatchWrites     bool
	BatchesInFlight int
	MaxBatchRecords int
	MaxBatchBytes   int
	// MaxProducers bounds the idempotent writes in flight at once (each
	// uses one producer id of the client; a producer has one write in
	// flight at a time, so its sequences reach the proxy in order). Writes
	// beyond it wait. Default 1024.
	MaxProducers int
	// ProducerIDPrefix prefixes the client's producer ids. Default: a
	// random one per client.
	ProducerIDPrefix string
	// MaxMessageBytes bounds one message the client sends or receives.
	// Default 16 MiB.
	MaxMessageBytes int
	// Protocol is how the client talks to proxies: "grpc" (default),
	// "grpcweb" or "connect" (all over cleartext HTTP/2).
	Protocol string
	// Connections is the number of HTTP/2 connections the client keeps to
	// each proxy, used in turn: one connection serialises its streams'
	// frames under one lock, which limits many concurrent small calls.
	// Default 4.
	Connections int
	// HTTPClient overrides the HTTP client (then Connections is 1) (it must speak cleartext HTTP/2
	// for "grpc"). The client does not close it.
	HTTPClient *http.Client
	// Logger receives the client's events (kebab-case keys); nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults documented on Config for the given
// proxies.
func DefaultConfig(servers ...string) Config {
	return Config{
		Servers:           servers,
		DiscoveryInterval: 30 * time.Second,
		VirtualNodes:      100,
		MaxRedirects:      8,
		MaxAttempts:       16,
		Blackout:          10 * time.Second,
		RetryBackoffMin:   20 * time.Millisecond,
		RetryBackoffMax:   time.Second,
		AttemptTimeout:    30 * time.Second,
		Idempotence:       true,
		BatchWrites:       true,
		BatchesInFlight:   4,
		MaxBatchRecords:   1000,
		MaxBatchBytes:     1 << 20,
		MaxProducers:      1024,
		MaxMessageBytes:   16 << 20,
		Connections:       4,
		Protocol:          "grpc",
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setDur(&c.DiscoveryInterval, d.DiscoveryInterval)
	setInt(&c.VirtualNodes, d.VirtualNodes)
	setInt(&c.MaxRedirects, d.MaxRedirects)
	setInt(&c.MaxAttempts, d.MaxAttempts)
	setDur(&c.Blackout, d.Blackout)
	setDur(&c.RetryBackoffMin, d.RetryBackoffMin)
	setDur(&c.RetryBackoffMax, d.RetryBackoffMax)
	setInt(&c.MaxProducers, d.MaxProducers)
	setInt(&c.MaxMessageBytes, d.MaxMessageBytes)
	setInt(&c.Connections, d.Connections)
	setInt(&c.BatchesInFlight, d.BatchesInFlight)
	setInt(&c.MaxBatchRecords, d.MaxBatchRecords)
	setInt(&c.MaxBatchBytes, d.MaxBatchBytes)
	if c.Protocol == "" {
		c.Protocol = d.Protocol
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks the configuration (with defaults applied). Errors wrap
// dlog.ErrInvalidArgument.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: client config: %s", dlog.ErrInvalidArgument, fmt.Sprintf(format, args...))
	}
	if c.Namespace != "" {
		if err := dlog.ValidateName(c.Namespace); err != nil {
			return fmt.Errorf("client config: namespace: %w", err)
		}
	}
	switch {
	case len(c.Servers) == 0:
		return bad("no servers")
	case c.VirtualNodes < 1 || c.MaxRedirects < 0 || c.MaxAttempts < 1:
		return bad("virtual nodes %d, redirects %d, attempts %d", c.VirtualNodes, c.MaxRedirects, c.MaxAttempts)
	case c.Blackout < 0 || c.RetryBackoffMin <= 0 || c.RetryBackoffMax < c.RetryBackoffMin || c.AttemptTimeout < 0:
		return bad("blackout %v, backoff %v..%v, attempt timeout %v", c.Blackout, c.RetryBackoffMin, c.RetryBackoffMax, c.AttemptTimeout)
	case c.MaxProducers < 1 || c.MaxMessageBytes < 1024 || c.Connections < 1 || c.Connections > 64:
		return bad("producers %d, max message %d bytes, connections %d", c.MaxProducers, c.MaxMessageBytes, c.Connections)
	case c.BatchesInFlight < 1 || c.MaxBatchRecords < 1 || c.MaxBatchBytes < 1:
		return bad("batches in flight %d, batch %d records %d bytes", c.BatchesInFlight, c.MaxBatchRecords, c.MaxBatchBytes)
	case c.Protocol != "grpc" && c.Protocol != "grpcweb" && c.Protocol != "connect":
		return bad("protocol %q: want grpc, grpcweb or connect", c.Protocol)
	case len(c.ProducerIDPrefix) > dlog.MaxProducerIDLength-24:
		return bad("producer id prefix of %d bytes", len(c.ProducerIDPrefix))
	}
	for _, s := range c.Servers {
		if s == "" {
			return bad("empty server address")
		}
	}
	return nil
}
