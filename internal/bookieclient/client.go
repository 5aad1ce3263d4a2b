package bookieclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// Config configures a Client.
type Config struct {
	// DefaultTimeout bounds a request whose ctx has no deadline. Default 10 s.
	DefaultTimeout time.Duration
	// MaxPendingPerBookie bounds requests in flight to one bookie; beyond it
	// calls fail at once with ErrOverloaded. Default 16384.
	MaxPendingPerBookie int
	// MaxMessageBytes bounds one gRPC message either way. Default 16 MiB
	// (entries are at most a few MiB).
	MaxMessageBytes int
	// MaxReconnectDelay caps the wait between attempts to reconnect to a
	// bookie that went away. gRPC's own default grows to 120 s, which would
	// keep a restarted bookie unused for minutes; a short cap trades a few
	// connection attempts per second to a dead bookie for recovering within
	// about this delay once it is back. 0 means the default, 1 s.
	MaxReconnectDelay time.Duration
	// Logger receives connection events; nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults described on Config.
func DefaultConfig() Config {
	return Config{DefaultTimeout: 10 * time.Second, MaxPendingPerBookie: 16384, MaxMessageBytes: 16 << 20}
}

func (c *Client) reconnectDelay() time.Duration {
	if c.cfg.MaxReconnectDelay > 0 {
		return c.cfg.MaxReconnectDelay
	}
	return time.Second
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.DefaultTimeout <= 0 || c.MaxPendingPerBookie <= 0 || c.MaxMessageBytes <= 0 {
		return errors.New("bookieclient: DefaultTimeout, MaxPendingPerBookie and MaxMessageBytes must be positive")
	}
	return nil
}

// Client talks to any number of bookies, one gRPC connection and one
// pipelined stream per bookie address. It is safe for concurrent use.
type Client struct {
	cfg Config
	log *slog.Logger

	// conns maps an address to its conn: an immutable map, replaced (under
	// mu) when a connection is added, so lookups take no lock.
	conns atomic.Pointer[map[string]*conn]
	mu    struct {
		sync.Mutex
		closed bool
	}
}

// New returns a Client; connections are made lazily.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, log: cfg.Logger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Close fails every pending request with ErrClosed and closes connections.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	conns := c.conns.Swap(nil)
	c.mu.Unlock()
	if conns != nil {
		for _, cn := range *conns {
			cn.close()
		}
	}
	return nil
}

// conn returns the connection to addr, creating it if needed. A conn found
// while Close runs fails its requests with ErrClosed.
func (c *Client) conn(addr string) (*conn, error) {
	if conns := c.conns.Load(); conns != nil {
		if cn := (*conns)[addr]; cn != nil {
			return cn, nil
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return nil, ErrClosed
	}
	old := c.conns.Load()
	if old != nil && (*old)[addr] != nil {
		return (*old)[addr], nil
	}
	cc, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(c.cfg.MaxMessageBytes), grpc.MaxCallSendMsgSize(c.cfg.MaxMessageBytes)),
		grpc.WithInitialWindowSize(4<<20),
		grpc.WithInitialConnWindowSize(16<<20),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  50 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   c.reconnectDelay(),
			},
			MinConnectTimeout: 2 * time.Second,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, addr, err)
	}
	cn := &conn{addr: addr, cc: cc, client: bookiepb.NewBookieClient(cc), maxPending: c.cfg.MaxPendingPerBookie, log: c.log}
	cn.base, cn.cancelBase = context.WithCancel(context.Background())
	cn.mu.pending = make(map[uint64]*call)
	conns := make(map[string]*conn)
	if old != nil {
		maps.Copy(conns, *old)
	}
	conns[addr] = cn
	c.conns.Store(&conns)
	return cn, nil
}

// Go sends req to the bookie at addr and calls done exactly once with the
// response (nil error only for STATUS_OK) or an error. The request's
// timeout_ms is set from ctx's deadline (or DefaultTimeout). done may run on
// the client's receive goroutine: it must not block. Go sets req.Txn and
// req.TimeoutMs and encodes req before it returns; req is the caller's
// again from then on. Go never waits for the network (beyond opening a
// stream to a bookie not connected yet, bounded by ctx): requests are
// queued and sent by the stream's sender goroutine.
func (c *Client) Go(ctx context.Context, addr string, req *bookiepb.Request, done func(*bookiepb.Response, error)) {
	cn, err := c.conn(addr)
	if err != nil {
		done(nil, err)
		return
	}
	timeout := c.cfg.DefaultTimeout
	var timer time.Duration // > 0: ctx has no deadline, time out after it
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			done(nil, fmt.Errorf("%w: %s: deadline passed before send", ErrTimeout, addr))
			return
		}
	} else {
		timer = timeout
	}
	req.TimeoutMs = uint32(min(timeout.Milliseconds()+1, math.MaxUint32))
	cn.send(ctx, req, timer, done)
}

// Do is the synchronous form of Go.
func (c *Client) Do(ctx context.Context, addr string, req *bookiepb.Request) (*bookiepb.Response, error) {
	type result struct {
		r   *bookiepb.Response
		err error
	}
	ch := make(chan result, 1)
	c.Go(ctx, addr, req, func(r *bookiepb.Response, err error) { ch <- result{r, err} })
	res := <-ch
	return res.r, res.err
}

// Add sends an add and waits for the bookie to have it fsynced.
func (c *Client) Add(ctx context.Context, addr string, add *bookiepb.AddRequest) error {
	_, err := c.Do(ctx, addr, &bookiepb.Request{Body: &bookiepb.Request_Add{Add: add}})
	return err
}

// AddAsync is Add with a callback (see Go for the callback's rules).
func (c *Client) AddAsync(ctx context.Context, addr string, add *bookiepb.AddRequest, done func(error)) {
	c.AddAsyncTo(ctx, addr, "", add, done)
}

// AddAsyncTo is AddAsync to the bookie with id bookieID at addr: any other
// bookie answering there refuses the add (ErrWrongBookie) and stores
// nothing. An empty bookieID checks nothing.
func (c *Client) AddAsyncTo(ctx context.Context, addr, bookieID string, add *bookiepb.AddRequest, done func(error)) {
	c.Go(ctx, addr, &bookiepb.Request{ExpectedBookieId: bookieID, Body: &bookiepb.Request_Add{Add: add}},
		func(_ *bookiepb.Response, err error) { done(err) })
}

// Read reads one entry (entry id -1: the bookie's last entry), optionally
// fencing the ledger first. A returned entry has passed its checksum.
func (c *Client) Read(ctx context.Context, addr string, rd *bookiepb.ReadRequest) (*bookiepb.ReadResponse, error) {
	r, err := c.Do(ctx, addr, &bookiepb.Request{Body: &bookiepb.Request_Read{Read: rd}})
	if err != nil {
		return nil, err
	}
	out := r.GetRead()
	if out == nil {
		return nil, fmt.Errorf("%w: %s: read answer without body", ErrBadResponse, addr)
	}
	if e := out.Entry; e != nil && (!e.Verify() || e.LedgerId != rd.LedgerId || (rd.EntryId >= 0 && e.EntryId != rd.EntryId)) {
		return nil, fmt.Errorf("%w: %s: entry %d:%d failed verification", ErrBadResponse, addr, rd.LedgerId, rd.EntryId)
	}
	return out, nil
}

// ReadLAC reads the bookie's LAC, long-polling when asked to.
func (c *Client) ReadLAC(ctx context.Context, addr string, rl *bookiepb.ReadLACRequest) (*bookiepb.ReadLACResponse, error) {
	r, err := c.Do(ctx, addr, &bookiepb.Request{Body: &bookiepb.Request_ReadLac{ReadLac: rl}})
	if err != nil {
		return nil, err
	}
	out := r.GetReadLac()
	if out == nil {
		return nil, fmt.Errorf("%w: %s: read-lac answer without body", ErrBadResponse, addr)
	}
	if e := out.Entry; e != nil && (!e.Verify() || e.LedgerId != rl.LedgerId) {
		return nil, fmt.Errorf("%w: %s: piggybacked entry failed verification", ErrBadResponse, addr)
	}
	return out, nil
}

// WriteLAC tells the bookie an explicit LAC.
func (c *Client) WriteLAC(ctx context.Context, addr string, wl *bookiepb.WriteLACRequest) error {
	_, err := c.Do(ctx, addr, &bookiepb.Request{Body: &bookiepb.Request_WriteLac{WriteLac: wl}})
	return err
}

// Delete deletes a ledger on the bookie.
func (c *Client) Delete(ctx context.Context, addr string, ledgerID int64) error {
	_, err := c.Do(ctx, addr, &bookiepb.Request{Body: &bookiepb.Request_Delete{Delete: &bookiepb.DeleteRequest{LedgerId: ledgerID}}})
	return err
}

// Info asks the bookie for its identity, state and free space.
func (c *Client) Info(ctx context.Context, addr string) (*bookiepb.InfoResponse, error) {
	r, err := c.Do(ctx, addr, &bookiepb.Request{Body: &bookiepb.Request_Info{Info: &bookiepb.InfoRequest{}}})
	if err != nil {
		return nil, err
	}
	if r.GetInfo() == nil {
		return nil, fmt.Errorf("%w: %s: info answer without body", ErrBadResponse, addr)
	}
	return r.GetInfo(), nil
}
