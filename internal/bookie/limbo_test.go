package bookie

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	dto "github.com/prometheus/client_model/go"

	"github.com/dlog-io/dlog/internal/bookieclient"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// journalRecordOffsets walks the journal file's records (format: package
// journal) and returns their offsets.
func journalRecordOffsets(data []byte) []int {
	var offs []int
	for off := 40; off+8 <= len(data); {
		n := int(binary.LittleEndian.Uint32(data[off:]))
		if n == 0 {
			break
		}
		offs = append(offs, off)
		off += 8 + n
	}
	return offs
}

// TestLimboAfterSuspectCut: damage to a journal record that later records
// follow (so it was synced, and its add may have been acknowledged) puts
// the bookie in limbo, for good: reads of entries and ledgers it does not
// hold answer IO_ERROR (unknown), never NO_ENTRY or NO_LEDGER, so that
// ledger recovery cannot count the lost entry as absent. A deleted ledger
// still answers NO_LEDGER; adds are still accepted; the surviving entries
// read back.
func TestLimboAfterSuspectCut(t *testing.T) {
	fs := vfs.NewCrashableMem()
	b := start(t, memConfig(t, fs))
	c := newClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	addr := b.ListenAddr()
	noErr(t, c.Add(ctx, addr, addReq(4, 0, -1)), "add 4:0")
	noErr(t, c.Delete(ctx, addr, 4), "delete 4")
	for e := range int64(20) {
		noErr(t, c.Add(ctx, addr, addReq(1, e, e-1)), "add %d", e)
	}
	if b.Limbo() != "" {
		t.Fatalf("fresh bookie in limbo: %s", b.Limbo())
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{})
	noErr(t, b.Close(), "close")
	path := onlyJournalFile(t, crashed)
	data, err := crashed.UnsafeGetFileDataBuffer(path)
	noErr(t, err, "journal data")
	offs := journalRecordOffsets(data)
	if len(offs) != 22 {
		t.Fatalf("journal holds %d records, want 22", len(offs))
	}
	at := offs[2+5] // ledger 1 entry 5
	data[at+8+(offs[2+6]-at-8)/2] ^= 0x10

	check := func(b *Bookie) {
		t.Helper()
		if b.Limbo() == "" {
			t.Fatal("bookie not in limbo after a suspect cut")
		}
		var m dto.Metric
		noErr(t, b.met.limbo.Write(&m), "limbo gauge")
		if m.GetGauge().GetValue() != 1 {
			t.Fatalf("limbo gauge %v, want 1", m.GetGauge().GetValue())
		}
		addr := b.ListenAddr()
		for e := range int64(5) {
			readEntry(t, c, addr, 1, e, payloadOf(1, e))
		}
		for _, req := range []*bookiepb.ReadRequest{
			{LedgerId: 1, EntryId: 6},  // lost in the cut
			{LedgerId: 1, EntryId: 19}, // lost in the cut
			{LedgerId: 99, EntryId: 0}, // unknown ledger (its records may have been lost)
		} {
			_, err := c.Read(ctx, addr, req)
			wantErr(t, err, bookieclient.ErrIO, "read %d:%d in limbo", req.LedgerId, req.EntryId)
			if bookieclient.IsExplicitNegative(err) {
				t.Fatalf("read %d:%d in limbo answered an explicit negative: %v", req.LedgerId, req.EntryId, err)
			}
		}
		_, err := c.ReadLAC(ctx, addr, &bookiepb.ReadLACRequest{LedgerId: 98})
		wantErr(t, err, bookieclient.ErrIO, "read-lac of an unknown ledger in limbo")
		_, err = c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: 4, EntryId: 0})
		wantErr(t, err, bookieclient.ErrNoLedger, "read of a deleted ledger in limbo")
	}
	b2 := start(t, memConfig(t, crashed))
	if !b2.journal.Stats().ReplayCutSuspect {
		t.Fatal("the journal did not report a suspect cut")
	}
	check(b2)
	// Writes go on: a fence and a recovery add (what recovery does) work.
	_, err = c.Read(ctx, b2.ListenAddr(), &bookiepb.ReadRequest{LedgerId: 1, EntryId: -1, Fence: true, MasterKey: testKey})
	noErr(t, err, "fence in limbo")
	re := addReq(1, 5, 4)
	re.Recovery = true
	noErr(t, c.Add(ctx, b2.ListenAddr(), re), "recovery add in limbo")
	readEntry(t, c, b2.ListenAddr(), 1, 5, payloadOf(1, 5))

	// Limbo survives restarts, also after the damage is cut away.
	crashed2 := crashed.CrashClone(vfs.CrashCloneCfg{})
	noErr(t, b2.Close(), "close")
	b3 := start(t, memConfig(t, crashed2))
	if b3.journal.Stats().ReplayCutSuspect {
		t.Fatal("the cut was not durable")
	}
	check(b3)
	readEntry(t, c, b3.ListenAddr(), 1, 5, payloadOf(1, 5))
}

// TestLimboMarkerHelpers: the operator helpers read the marker and the
// bookie's identity from its directory, refuse to clear the marker while
// the bookie runs (it holds its journal's lock), and clear it once the
// bookie is stopped; the bookie then starts out of limbo.
func TestLimboMarkerHelpers(t *testing.T) {
	fs := vfs.NewMem()
	cfg := memConfig(t, fs)
	b := start(t, cfg)
	if _, found, err := ReadLimboMarker(fs, cfg.Dir); err != nil || found {
		t.Fatalf("fresh bookie: marker found %v, %v", found, err)
	}
	id, jdir, found, err := ReadBookieIdentity(fs, cfg.Dir)
	noErr(t, err, "identity")
	if !found || id != b.ID() || jdir != cfg.journalDir(fs) {
		t.Fatalf("identity: %q %q %v; want %q %q", id, jdir, found, b.ID(), cfg.journalDir(fs))
	}
	marker := `{"version":1,"since":"2026-01-02T03:04:05Z","reason":"bad checksum","cut":"00000001.journal:4096"}`
	noErr(t, writeDurable(fs, cfg.Dir, limboFileName, []byte(marker)), "write marker")
	m, found, err := ReadLimboMarker(fs, cfg.Dir)
	noErr(t, err, "read marker")
	want := LimboMarker{Since: "2026-01-02T03:04:05Z", Reason: "bad checksum", Cut: "00000001.journal:4096"}
	if !found || m != want {
		t.Fatalf("marker: %+v %v; want %+v", m, found, want)
	}
	if err := ClearLimboMarker(fs, cfg.Dir, ""); err == nil {
		t.Fatal("cleared the marker of a running bookie")
	}
	if _, found, _ := ReadLimboMarker(fs, cfg.Dir); !found {
		t.Fatal("refused clear removed the marker")
	}
	noErr(t, b.Close(), "close")

	// An unreadable marker still counts, and clears like any other.
	noErr(t, writeDurable(fs, cfg.Dir, limboFileName, []byte("{garbage")), "write bad marker")
	if m, found, err := ReadLimboMarker(fs, cfg.Dir); err != nil || !found || !m.Unreadable {
		t.Fatalf("unreadable marker: %+v %v %v", m, found, err)
	}
	noErr(t, ClearLimboMarker(fs, cfg.Dir, ""), "clear stopped bookie")
	if _, found, err := ReadLimboMarker(fs, cfg.Dir); err != nil || found {
		t.Fatalf("after clear: found %v, %v", found, err)
	}
	noErr(t, ClearLimboMarker(fs, cfg.Dir, cfg.journalDir(fs)), "clear again")
	if err := ClearLimboMarker(fs, cfg.Dir, "/nowhere"); err == nil {
		t.Fatal("cleared with a journal directory that does not exist")
	}
	b = start(t, cfg)
	if b.Limbo() != "" {
		t.Fatalf("restarted bookie in limbo: %s", b.Limbo())
	}
}
