package bookie

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/bookieclient"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// The child process of TestCrashAcrossProcesses is this test binary with
// these environment variables set (TestMain calls runCrashChild).
const (
	childEnv     = "DLOG_BOOKIE_CRASH_CHILD"
	childDirEnv  = "DLOG_BOOKIE_CRASH_DIR"
	childRunEnv  = "DLOG_BOOKIE_CRASH_RUN"
	childSeedEnv = "DLOG_BOOKIE_CRASH_SEED"
)

var crashSeed = flag.Uint64("bookie.crash-seed", 0, "seed of the crash tests (0: a fixed default)")

func seedOf(t *testing.T) uint64 {
	seed := *crashSeed
	if seed == 0 {
		seed = 20261122
	}
	t.Logf("seed %d (rerun with -bookie.crash-seed=%d)", seed, seed)
	return seed
}

// crashConfig makes a bookie that checkpoints, rolls journal files, fills
// its write cache and rolls entry logs within a short run, so kills land in
// every phase.
func crashConfig(dir string, logger *slog.Logger) Config {
	cfg := DefaultConfig()
	cfg.ID = "crash-bookie"
	cfg.Dir = dir
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.MinFreeBytes = 0
	cfg.MaxEntryBytes = 8 << 10
	cfg.JournalFileSizeBytes = 64 << 10
	cfg.WriteCacheMaxBytes = 256 << 10
	cfg.EntryLogMaxFileSizeBytes = 64 << 10
	cfg.FlushInterval = 30 * time.Millisecond
	cfg.GCInterval = -1
	cfg.Logger = logger
	return cfg
}

// crashPayload is entry e of ledger l in run seed: 1..4000 bytes.
func crashPayload(seed uint64, l, e int64) []byte {
	rng := rand.New(rand.NewPCG(seed^uint64(l), uint64(e)))
	p := make([]byte, 1+rng.IntN(4000))
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}

func hashOf(p []byte) string {
	h := sha256.Sum256(p)
	return hex.EncodeToString(h[:8])
}

// runCrashChild runs a bookie on $DIR and adders that print every
// acknowledged entry as "ack <ledger> <entry> <hash>" on stdout, until
// killed.
func runCrashChild() int {
	dir := os.Getenv(childDirEnv)
	run, _ := strconv.ParseInt(os.Getenv(childRunEnv), 10, 64)
	seed, _ := strconv.ParseUint(os.Getenv(childSeedEnv), 10, 64)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	b, err := Open(ctx, crashConfig(dir, logger))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		return 1
	}
	c, err := bookieclient.New(bookieclient.DefaultConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: client:", err)
		return 1
	}
	var mu sync.Mutex
	const adders, window = 6, 8
	var wg sync.WaitGroup
	for a := range int64(adders) {
		wg.Go(func() {
			l := run*100 + a
			sem := make(chan struct{}, window)
			for e := int64(0); ; e++ {
				sem <- struct{}{}
				p := crashPayload(seed, l, e)
				lac := e - window - 1 // a lower bound of what is acknowledged
				req := &bookiepb.AddRequest{Entry: bookiepb.NewEntry(l, e, max(lac, -1), p), MasterKey: testKey}
				c.AddAsync(ctx, b.ListenAddr(), req, func(err error) {
					<-sem
					if err != nil {
						fmt.Fprintln(os.Stderr, "child: add:", err)
						return
					}
					mu.Lock()
					// One write(2) per line: a kill never tears a line.
					fmt.Fprintf(os.Stdout, "ack %d %d %s\n", l, e, hashOf(p))
					mu.Unlock()
				})
			}
		})
	}
	wg.Wait()
	return 0
}

type ackedEntry struct {
	l, e int64
	hash string
}

// TestCrashAcrossProcesses kills (SIGKILL) a child process running a bookie
// under concurrent adds at seeded random points, restarts a bookie on the
// same directory and checks that every entry the child saw acknowledged
// reads back byte-identical (by hash), across all runs so far.
func TestCrashAcrossProcesses(t *testing.T) {
	runs := 20
	if testing.Short() {
		runs = 3
	}
	seed := seedOf(t)
	rng := rand.New(rand.NewPCG(seed, 7))
	dir := t.TempDir()
	var acked []ackedEntry
	for run := range runs {
		killAfter := 1 + rng.IntN(600)
		got, stderr := runChildUntil(t, dir, run, seed, killAfter)
		if len(got) < killAfter {
			t.Fatalf("run %d: child acknowledged %d entries, expected at least %d; stderr:\n%s", run, len(got), killAfter, stderr)
		}
		acked = append(acked, got...)
		b, err := Open(t.Context(), crashConfig(dir, testLogger(t)))
		noErr(t, err, "run %d: reopen", run)
		c := newClient(t)
		verifyEntries(t, c, b.ListenAddr(), len(acked), func(i int) (int64, int64) { return acked[i].l, acked[i].e },
			func(i int, payload []byte) error {
				a := acked[i]
				if h := hashOf(payload); h != a.hash || !bytes.Equal(payload, crashPayload(seed, a.l, a.e)) {
					return fmt.Errorf("run %d: reads back with hash %s, acknowledged %s", run, h, a.hash)
				}
				return nil
			})
		noErr(t, b.Close(), "close")
		_ = c.Close()
		t.Logf("run %d: killed after %d acks; %d acknowledged entries verified", run, killAfter, len(acked))
	}
}

// runChildUntil starts the child, kills it with SIGKILL once it has printed
// killAfter acks, and returns every ack it printed.
func runChildUntil(t *testing.T, dir string, run int, seed uint64, killAfter int) ([]ackedEntry, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childDirEnv+"="+dir,
		fmt.Sprintf("%s=%d", childRunEnv, run), fmt.Sprintf("%s=%d", childSeedEnv, seed))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	noErr(t, err, "stdout pipe")
	noErr(t, cmd.Start(), "start child")
	var got []ackedEntry
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != "ack" {
			t.Fatalf("child printed %q", sc.Text())
		}
		l, _ := strconv.ParseInt(f[1], 10, 64)
		e, _ := strconv.ParseInt(f[2], 10, 64)
		got = append(got, ackedEntry{l, e, f[3]})
		if !killed && len(got) >= killAfter {
			noErr(t, cmd.Process.Kill(), "kill child %d", cmd.Process.Pid)
			killed = true
		}
	}
	if !killed {
		_ = cmd.Process.Kill()
	}
	_ = cmd.Wait()
	return got, stderr.String()
}
