package journal

import (
	"errors"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// The preparer goroutine creates the next journal file ahead of time, so
// that a roll does not stall the writer for a 64 MiB zero-fill. It is only
// asked when no released file is waiting to be recycled (see doc.go,
// "Recycling"), and gives up (errRecyclable) as soon as one is.
//
// Zero-filling writes every journal byte twice. Measured on this project's
// (shared, virtio) machines, a fill run at full speed through the page
// cache right after a roll cost about a fifth of the process's CPU and made
// the journal's concurrent fdatasyncs two to three times slower until it
// finished; even paced and with O_DIRECT, it doubled the mean group
// fdatasync at 256 appenders. So the fill uses O_DIRECT where it can (see
// zeroFill) and is paced by the writer's progress through the current
// file: it writes its k-th chunk of n only once the writer has consumed k/n
// of the first three quarters of the current file's remaining room, which
// spreads the zeros over the groups instead of stalling a run of them, and
// finishes the spare with a quarter of the file to spare. If the writer
// needs the spare sooner (records arrive faster than the disk can zero), it
// marks the request urgent and the fill runs at full speed; the roll then
// waits for it, which is the journal's back-pressure.
type preparer struct {
	reqc      chan uint64      // cap 1: request numbers; at most one outstanding
	resc      chan spareResult // cap 1: one result per request taken
	donec     chan struct{}    // closed when the goroutine has exited
	progressc chan struct{}    // cap 1, coalescing: the writer advanced or marked urgent
	fillOff   atomic.Int64     // the writer's offset in its file
	fillCap   atomic.Int64     // and that file's capacity
	urgent    atomic.Uint64    // requests up to this number are urgent
}

type spareResult struct {
	file vfs.File
	err  error
}

// reportProgress publishes the writer's position to the preparer. Writer
// goroutine (and Replay, before it) only.
func (j *Journal) reportProgress() {
	j.prep.fillCap.Store(j.w.capacity)
	j.prep.fillOff.Store(j.w.off)
	select {
	case j.prep.progressc <- struct{}{}:
	default:
	}
}

// requestSpare asks the preparer for the next file. Called by Replay and
// then by the writer goroutine only; at most one request is outstanding.
func (j *Journal) requestSpare() {
	j.reportProgress()
	j.w.spareGen++
	j.w.spareRequested = true
	j.prep.reqc <- j.w.spareGen
}

// maybeRequestSpare takes a finished spare if the preparer has one, and
// asks for a new one if the next roll would otherwise find no file ready:
// no spare, none being prepared and no released file to recycle. Replay
// and the writer goroutine only.
func (j *Journal) maybeRequestSpare() {
	if j.w.spareRequested {
		select {
		case r := <-j.prep.resc:
			j.w.spareRequested = false
			switch {
			case r.err == nil:
				j.w.ready = r.file
			case !errors.Is(r.err, errRecyclable) && !errors.Is(r.err, errStopped):
				j.log.Warn("journal: preparing the next file failed; will retry", "err", r.err)
			}
		default:
		}
	}
	if j.w.spareRequested || j.w.ready != nil || j.w.reuse != "" || j.freeCount.Load() > 0 {
		return
	}
	j.requestSpare()
}

// takeSpare returns the prepared spare file, waiting for it if needed, or
// creates one now if none was requested or preparing it failed. It returns
// errRecyclable if the preparer gave up because a released file can be
// recycled.
func (j *Journal) takeSpare() (vfs.File, error) {
	if !j.w.spareRequested {
		return createPreallocated(j.fs, j.cfg.Dir, j.cfg.FileSizeBytes, j.stopping)
	}
	j.w.spareRequested = false
	j.prep.urgent.Store(j.w.spareGen)
	select {
	case j.prep.progressc <- struct{}{}:
	default:
	}
	var r spareResult
	if len(j.prep.resc) == 0 {
		j.stats.spareWaits.Add(1)
	}
	select {
	case r = <-j.prep.resc: // the preparer answers every request it takes
	case <-j.prep.donec: // unless the journal is closing
		select {
		case r = <-j.prep.resc:
		default:
			r.err = errStopped
		}
	}
	if r.err != nil && !errors.Is(r.err, errStopped) && !errors.Is(r.err, errRecyclable) {
		// Preparing ahead failed; the disk may have changed since.
		j.log.Warn("journal: preparing the next file failed; retrying now", "err", r.err)
		return createPreallocated(j.fs, j.cfg.Dir, j.cfg.FileSizeBytes, j.stopping)
	}
	return r.file, r.err
}

// stopping is a pace function that only aborts when the journal closes.
func (j *Journal) stopping(int64) error {
	select {
	case <-j.stopc:
		return errStopped
	default:
		return nil
	}
}

// runPreparer is the preparer goroutine. It exits when stopc is closed.
func (j *Journal) runPreparer() {
	defer close(j.prep.donec)
	for {
		var gen uint64
		select {
		case <-j.stopc:
			return
		case gen = <-j.prep.reqc:
		}
		startOff, capacity := j.prep.fillOff.Load(), j.prep.fillCap.Load()
		finishAt := startOff + (capacity-startOff)*3/4
		size := j.cfg.FileSizeBytes
		pace := func(done int64) error {
			need := startOff + int64(float64(finishAt-startOff)*float64(done)/float64(size))
			for {
				if err := j.stopping(0); err != nil {
					return err
				}
				if j.freeCount.Load() > 0 {
					return errRecyclable
				}
				if j.prep.fillOff.Load() >= need || j.prep.urgent.Load() >= gen {
					return nil
				}
				select {
				case <-j.stopc:
				case <-j.prep.progressc:
				}
			}
		}
		f, err := createPreallocated(j.fs, j.cfg.Dir, size, pace)
		j.prep.resc <- spareResult{file: f, err: err}
	}
}
