package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/client"
)

// Mode is what a run measures.
type Mode int

const (
	// Write appends records as fast as Concurrency requests in flight
	// allow and measures throughput and acknowledgement latency.
	Write Mode = iota + 1
	// Read reads Records existing records from the start of the log
	// (writing them first when the log holds fewer) and measures
	// catch-up throughput.
	Read
	// Tail writes at a steady Rate while Readers follow the log and
	// measures end-to-end latency (from the write call to delivery).
	Tail
	// EndToEnd writes at full speed while Readers follow the log and
	// measures throughput, acknowledgement and end-to-end latency.
	EndToEnd
)

func (m Mode) String() string {
	switch m {
	case Write:
		return "write"
	case Read:
		return "read"
	case Tail:
		return "tail"
	case EndToEnd:
		return "e2e"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// ParseMode reads write, read, tail or e2e.
func ParseMode(s string) (Mode, error) {
	for m := Write; m <= EndToEnd; m++ {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("bench: mode %q: want write, read, tail or e2e", s)
}

// Config describes one run. Start from DefaultConfig.
type Config struct {
	Mode Mode
	// Client talks to the service. Required; Run does not close it.
	Client *client.Client
	// Log is the log written and read (created when missing); with Logs
	// > 1 the logs are Log-0 .. Log-(Logs-1). Default "bench".
	Log  string
	Logs int
	// Records is how many records to write (read, for Read); 0 runs for
	// Duration. At least one of Records and Duration must be set; the run
	// ends at whichever comes first.
	Records  int64
	Duration time.Duration
	// RecordBytes is the payload size, at least 16 (a timestamp and a
	// sequence number lead every payload). Default 256.
	RecordBytes int
	// Concurrency is the number of write requests in flight. Default 16.
	Concurrency int
	// BatchRecords is the records per request: 1 uses Write, more use
	// WriteBulk. Default 1.
	BatchRecords int
	// Readers is the number of readers (Read, Tail, EndToEnd). Default 1.
	Readers int
	// Rate bounds the records written per second (0: unlimited). Tail
	// defaults to 1000.
	Rate float64
	// Progress, when set, is called about five times a second with the
	// records done so far (acknowledged writes, or reads for Read).
	Progress func(done int64, elapsed time.Duration)
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig(m Mode, c *client.Client) Config {
	cfg := Config{Mode: m, Client: c, Log: "bench", Logs: 1, Records: 100000, RecordBytes: 256, Concurrency: 16,
		BatchRecords: 1, Readers: 1}
	if m == Tail {
		cfg.Rate = 1000
		cfg.Records = 10000
	}
	return cfg
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Mode < Write || c.Mode > EndToEnd:
		return fmt.Errorf("bench: unknown mode %d", int(c.Mode))
	case c.Client == nil:
		return errors.New("bench: no client")
	case c.Records < 0 || c.Duration < 0 || (c.Records == 0 && c.Duration == 0):
		return errors.New("bench: set records, a duration, or both (and neither negative)")
	case c.RecordBytes < 16 || c.RecordBytes > 1<<20:
		return fmt.Errorf("bench: record size %d: want 16 bytes to 1 MiB", c.RecordBytes)
	case c.Concurrency < 1 || c.BatchRecords < 1 || c.Readers < 1 || c.Logs < 1:
		return errors.New("bench: concurrency, batch, readers and logs must be at least 1")
	case c.Rate < 0:
		return errors.New("bench: negative rate")
	}
	if err := dlog.ValidateName(c.Log); err != nil {
		return fmt.Errorf("bench: log: %w", err)
	}
	return nil
}

// Result is what a run measured.
type Result struct {
	Mode string
	// Records and Bytes are what the run wrote (Write, Tail, EndToEnd) or
	// read (Read: summed over the readers), payload bytes only; Errors the
	// records that failed.
	Records, Bytes, Errors int64
	Elapsed                time.Duration
	RecordsPerSecond       float64
	MBPerSecond            float64 // 10^6 bytes
	// Delivered is what the readers received (Tail, EndToEnd: counted
	// once per reader).
	Delivered int64
	// WriteLatency: from a write request's send to its acknowledgement
	// (every record of a batch counts once). EndToEnd: from the write
	// call to a reader's delivery. Nil when not measured.
	WriteLatency, EndToEndLatency *Latency
	// FirstError is the first error seen, if any.
	FirstError string
}

// logs returns the run's log names.
func (c Config) logs() []string {
	if c.Logs == 1 {
		return []string{c.Log}
	}
	out := make([]string, c.Logs)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", c.Log, i)
	}
	return out
}

// run is the shared state of one Run.
type run struct {
	cfg   Config
	start time.Time

	claimed atomic.Int64 // records handed to writers
	acked   atomic.Int64
	failed  atomic.Int64
	read    atomic.Int64 // records delivered (read mode) or to readers (tail)

	// perLog counts acknowledged records per log (fixed keys: read
	// without a lock).
	perLog map[string]*atomic.Int64

	errOnce  sync.Once
	firstErr error
}

func (r *run) fail(err error) {
	r.errOnce.Do(func() { r.firstErr = err })
}

// Run runs one benchmark. It returns an error when the run could not be
// set up; failures during the run are counted in Result.Errors.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	r := &run{cfg: cfg, perLog: map[string]*atomic.Int64{}}
	for _, l := range cfg.logs() {
		r.perLog[l] = &atomic.Int64{}
		if err := cfg.Client.CreateLog(ctx, l, 0); err != nil && !errors.Is(err, dlog.ErrLogExists) {
			return Result{}, fmt.Errorf("bench: create log %s: %w", l, err)
		}
		// Have a proxy take the log over now, so that the takeover (lock,
		// recovery) is not measured as the first writes' latency.
		if _, err := cfg.Client.Heartbeat(ctx, l); err != nil {
			return Result{}, fmt.Errorf("bench: take log %s over: %w", l, err)
		}
	}
	switch cfg.Mode {
	case Read:
		return r.runRead(ctx)
	default:
		return r.runWrite(ctx)
	}
}

// progress calls cfg.Progress until stop is closed.
func (r *run) progress(stop <-chan struct{}, done func() int64) {
	if r.cfg.Progress == nil {
		return
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			r.cfg.Progress(done(), time.Since(r.start))
			return
		case <-t.C:
			r.cfg.Progress(done(), time.Since(r.start))
		}
	}
}

// claim hands out up to n records to a writer; 0 when the run is done.
func (r *run) claim(n int) int {
	if r.cfg.Records == 0 {
		r.claimed.Add(int64(n))
		return n
	}
	end := r.claimed.Add(int64(n))
	over := end - r.cfg.Records
	switch {
	case over <= 0:
		return n
	case over < int64(n):
		return n - int(over)
	}
	return 0
}

// payload fills p: send time (UnixNano), a sequence number, filler.
func payload(p []byte, seq int64, now time.Time) {
	binary.BigEndian.PutUint64(p[0:8], uint64(now.UnixNano()))
	binary.BigEndian.PutUint64(p[8:16], uint64(seq))
}

// runWrite is Write, Tail and EndToEnd: writers (and, for the last two,
// readers following the logs).
func (r *run) runWrite(ctx context.Context) (Result, error) {
	cfg := r.cfg
	logs := cfg.logs()
	var lim *rate.Limiter
	if cfg.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(cfg.Rate), max(1, cfg.BatchRecords))
	}
	follow := cfg.Mode == Tail || cfg.Mode == EndToEnd

	// Readers first, positioned at the end and known to be live (each has
	// received a marker record) before the clock starts.
	var rwg sync.WaitGroup
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	readerHists := make([]*histogram, 0)
	if follow {
		type readerState struct {
			h     *histogram
			ready chan struct{}
		}
		var states []readerState
		for i := range cfg.Readers {
			log := logs[i%len(logs)]
			rd, err := cfg.Client.OpenReader(ctx, log, client.AtEnd(), client.ReadOptions{Follow: true})
			if err != nil {
				return Result{}, fmt.Errorf("bench: open reader on %s: %w", log, err)
			}
			st := readerState{h: &histogram{}, ready: make(chan struct{})}
			states = append(states, st)
			readerHists = append(readerHists, st.h)
			rwg.Go(func() {
				defer rd.Close()
				r.follow(rctx, rd, st.h, st.ready)
			})
		}
		// A reader opened at the end starts streaming asynchronously, so a
		// marker written right away may land before its start: write
		// markers until every reader has received one.
		marker := make([]byte, 16) // timestamp 0: not measured
		for _, st := range states {
			for ready := false; !ready; {
				for _, l := range logs {
					if _, err := cfg.Client.Write(ctx, l, dlog.Record{Payload: marker}); err != nil {
						rcancel()
						rwg.Wait()
						return Result{}, fmt.Errorf("bench: write marker to %s: %w", l, err)
					}
				}
				t := time.NewTimer(250 * time.Millisecond)
				select {
				case <-st.ready:
					ready = true
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					rcancel()
					rwg.Wait()
					return Result{}, ctx.Err()
				}
				t.Stop()
			}
		}
	}

	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	if cfg.Duration > 0 {
		wctx, wcancel = context.WithTimeout(ctx, cfg.Duration)
		defer wcancel()
	}
	r.start = time.Now()
	stop := make(chan struct{})
	var pwg sync.WaitGroup
	pwg.Go(func() { r.progress(stop, r.acked.Load) })

	filler := make([]byte, cfg.RecordBytes)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range filler {
		filler[i] = byte(rnd.Uint32())
	}
	hists := make([]*histogram, cfg.Concurrency)
	var wwg sync.WaitGroup
	var seq atomic.Int64
	for w := range cfg.Concurrency {
		h := &histogram{}
		hists[w] = h
		log := logs[w%len(logs)]
		wwg.Go(func() { r.writer(wctx, log, h, filler, &seq, lim) })
	}
	wwg.Wait()
	elapsed := time.Since(r.start)

	res := Result{Mode: cfg.Mode.String(), Records: r.acked.Load(), Errors: r.failed.Load()}
	if follow {
		// Every reader of a log gets what was acknowledged on it; wait for
		// that (or for ctx), bounded by a grace period after the writes.
		deadline := time.NewTimer(30 * time.Second)
		t := time.NewTicker(5 * time.Millisecond)
	wait:
		for r.read.Load() < r.expectedDeliveries() {
			select {
			case <-t.C:
			case <-deadline.C:
				r.fail(fmt.Errorf("readers received %d of %d records 30 s after the writes ended", r.read.Load(), r.expectedDeliveries()))
				break wait
			case <-ctx.Done():
				break wait
			}
		}
		t.Stop()
		deadline.Stop()
		elapsed = time.Since(r.start)
		rcancel()
		rwg.Wait()
		h := &histogram{}
		for _, rh := range readerHists {
			h.merge(rh)
		}
		res.EndToEndLatency = h.latency()
		res.Delivered = r.read.Load()
	}
	close(stop)
	pwg.Wait()

	h := &histogram{}
	for _, wh := range hists {
		h.merge(wh)
	}
	if cfg.Mode != Tail {
		res.WriteLatency = h.latency()
	}
	r.finish(&res, elapsed)
	return res, nil
}

// expectedDeliveries is what the readers must receive in total: each
// reader gets every record acknowledged on its log.
func (r *run) expectedDeliveries() int64 {
	logs := r.cfg.logs()
	var n int64
	for i := range r.cfg.Readers {
		n += r.perLog[logs[i%len(logs)]].Load()
	}
	return n
}

// countLog records n acknowledged records on log.
func (r *run) countLog(log string, n int64) { r.perLog[log].Add(n) }

func (r *run) finish(res *Result, elapsed time.Duration) {
	res.Elapsed = elapsed
	res.Bytes = res.Records * int64(r.cfg.RecordBytes)
	if s := elapsed.Seconds(); s > 0 {
		res.RecordsPerSecond = float64(res.Records) / s
		res.MBPerSecond = float64(res.Bytes) / s / 1e6
	}
	if r.firstErr != nil {
		res.FirstError = r.firstErr.Error()
	}
}

// writer writes until the run's records are claimed or ctx ends.
func (r *run) writer(ctx context.Context, log string, h *histogram, filler []byte, seq *atomic.Int64, lim *rate.Limiter) {
	cfg := r.cfg
	recs := make([]dlog.Record, cfg.BatchRecords)
	bufs := make([][]byte, cfg.BatchRecords)
	for i := range bufs {
		bufs[i] = make([]byte, cfg.RecordBytes)
		copy(bufs[i], filler)
	}
	for ctx.Err() == nil {
		n := r.claim(cfg.BatchRecords)
		if n == 0 {
			return
		}
		if lim != nil {
			if err := lim.WaitN(ctx, n); err != nil {
				return
			}
		}
		now := time.Now()
		for i := range n {
			payload(bufs[i], seq.Add(1), now)
			recs[i] = dlog.Record{Payload: bufs[i]}
		}
		var acked int
		var err error
		if n == 1 {
			_, err = cfg.Client.Write(ctx, log, recs[0])
			if err == nil {
				acked = 1
			}
		} else {
			var res []client.WriteResult
			res, err = cfg.Client.WriteBulk(ctx, log, recs[:n])
			acked = len(res)
		}
		took := time.Since(now)
		for range acked {
			h.add(took)
		}
		r.acked.Add(int64(acked))
		r.countLog(log, int64(acked))
		if err != nil {
			if ctx.Err() != nil {
				// The run's duration ended with this request in flight: it
				// is neither acknowledged nor a failure of the service.
				return
			}
			r.failed.Add(int64(n - acked))
			r.fail(err)
			if dlog.IsDefinite(err) && !errors.Is(err, dlog.ErrOverCapacity) {
				return // e.g. the log is gone: more of the same would not help
			}
		}
	}
}

// follow receives records for a tailing reader, measuring end-to-end
// latency from each payload's timestamp; ready closes at the first record
// (the marker).
func (r *run) follow(ctx context.Context, rd *client.Reader, h *histogram, ready chan struct{}) {
	first := true
	for {
		rec, err := rd.Next(ctx)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, io.EOF) {
				r.fail(fmt.Errorf("reader: %w", err))
			}
			if first {
				close(ready)
			}
			return
		}
		now := time.Now()
		if first {
			first = false
			close(ready)
		}
		if len(rec.Payload) < 16 {
			continue
		}
		ts := int64(binary.BigEndian.Uint64(rec.Payload[0:8]))
		if ts == 0 {
			continue // the marker
		}
		h.add(now.Sub(time.Unix(0, ts)))
		r.read.Add(1)
	}
}

// runRead is Read: make sure the log holds Records records, then read
// them from the start with Readers readers, each reading all of them.
func (r *run) runRead(ctx context.Context) (Result, error) {
	cfg := r.cfg
	log := cfg.logs()[0]
	info, err := cfg.Client.LogInfo(ctx, log)
	if err != nil {
		return Result{}, fmt.Errorf("bench: %s: %w", log, err)
	}
	want := cfg.Records
	if want == 0 {
		want = info.RecordCount
	}
	if missing := want - info.RecordCount; missing > 0 {
		fill := cfg
		fill.Mode, fill.Records, fill.Duration, fill.Progress, fill.Log, fill.Logs = Write, missing, 0, nil, log, 1
		fill.BatchRecords = max(fill.BatchRecords, 100)
		fr := &run{cfg: fill, perLog: map[string]*atomic.Int64{log: {}}}
		res, err := fr.runWrite(ctx)
		if err != nil {
			return Result{}, fmt.Errorf("bench: fill %s: %w", log, err)
		}
		if res.Errors > 0 {
			return Result{}, fmt.Errorf("bench: fill %s: %d records failed: %s", log, res.Errors, res.FirstError)
		}
	}
	if want == 0 {
		return Result{}, fmt.Errorf("bench: %s is empty: give a record count to read", log)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Duration > 0 {
		rctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	r.start = time.Now()
	stop := make(chan struct{})
	var pwg sync.WaitGroup
	pwg.Go(func() { r.progress(stop, r.read.Load) })
	var wg sync.WaitGroup
	var bytes atomic.Int64
	for range cfg.Readers {
		wg.Go(func() {
			rd, err := cfg.Client.OpenReader(rctx, log, client.AtStart(), client.ReadOptions{Limit: want})
			if err != nil {
				r.fail(err)
				return
			}
			defer rd.Close()
			for {
				rec, err := rd.Next(rctx)
				if err != nil {
					if !errors.Is(err, io.EOF) && rctx.Err() == nil {
						r.fail(fmt.Errorf("reader: %w", err))
						r.failed.Add(1)
					}
					return
				}
				r.read.Add(1)
				bytes.Add(int64(len(rec.Payload)))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(r.start)
	close(stop)
	pwg.Wait()
	res := Result{Mode: cfg.Mode.String(), Records: r.read.Load(), Errors: r.failed.Load(), Delivered: r.read.Load()}
	r.finish(&res, elapsed)
	res.Bytes = bytes.Load()
	if s := elapsed.Seconds(); s > 0 {
		res.MBPerSecond = float64(res.Bytes) / s / 1e6
	}
	return res, nil
}
