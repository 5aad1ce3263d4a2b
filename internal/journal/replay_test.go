package journal

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// template is a closed journal on disk and what it holds; damage tests copy
// it rather than rebuild it.
type template struct {
	dir  string
	recs []replayed
}

func buildTemplate(t *testing.T, n int) template {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	j, _ := openReplay(t, cfg, Position{})
	appendSeq(t, j, randomRecords(rand.New(rand.NewPCG(10, 10)), n, 1000))
	must.NoError(t, j.Close())
	recs := reopenRecords(t, cfg, Position{})
	must.Len(t, recs, n)
	return template{dir: cfg.Dir, recs: recs}
}

func (tp template) copy(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "journal")
	must.NoError(t, os.CopyFS(dir, os.DirFS(tp.dir)))
	return dir
}

func (tp template) path(dir string, id uint64) string { return filepath.Join(dir, fileName(id)) }

// lastFile is the id of the last file holding records.
func (tp template) lastFile() uint64 { return tp.recs[len(tp.recs)-1].pos.File }

// recordsIn returns the indexes of the records in file id.
func (tp template) recordsIn(id uint64) []int {
	var out []int
	for i, r := range tp.recs {
		if r.pos.File == id {
			out = append(out, i)
		}
	}
	return out
}

func (tp template) files() []uint64 {
	var out []uint64
	for _, r := range tp.recs {
		if len(out) == 0 || out[len(out)-1] != r.pos.File {
			out = append(out, r.pos.File)
		}
	}
	return out
}

// damage mutates a copy of the template and returns how many records (a
// prefix) must survive.
type damage func(t *testing.T, tp template, dir string, rng *rand.Rand) (survivors int)

func TestReplayStopsAtDamage(t *testing.T) {
	tp := buildTemplate(t, 600)
	files := tp.files()
	if len(files) < 4 {
		t.Fatalf("template has %d files, want at least 4", len(files))
	}
	iterations := 6
	if testing.Short() {
		iterations = 2
	}
	tests := []struct {
		name   string
		damage damage
	}{
		{name: "truncate last file", damage: func(t *testing.T, tp template, dir string, rng *rand.Rand) int {
			last := tp.lastFile()
			end := tp.recs[len(tp.recs)-1].next.Offset
			cut := rng.Int64N(end + 100)
			must.NoError(t, os.Truncate(tp.path(dir, last), cut))
			return countWhile(tp.recs, func(r replayed) bool { return r.next.File < last || r.next.Offset <= cut })
		}},
		{name: "truncate last file at a record boundary", damage: func(t *testing.T, tp template, dir string, rng *rand.Rand) int {
			in := tp.recordsIn(tp.lastFile())
			k := in[rng.IntN(len(in))]
			must.NoError(t, os.Truncate(tp.path(dir, tp.lastFile()), tp.recs[k].pos.Offset))
			return k
		}},
		{name: "garbage after the last record", damage: func(t *testing.T, tp template, dir string, rng *rand.Rand) int {
			at := tp.recs[len(tp.recs)-1].next.Offset + rng.Int64N(200)
			garbage := make([]byte, 1+rng.IntN(5000))
			for i := range garbage {
				garbage[i] = byte(1 + rng.IntN(255))
			}
			writeAt(t, tp.path(dir, tp.lastFile()), at, garbage)
			return len(tp.recs)
		}},
		{name: "valid-looking record after a gap", damage: func(t *testing.T, tp template, dir string, rng *rand.Rand) int {
			// A whole well-formed record beyond the end of data (as if an
			// unsynced later block survived a crash but an earlier one did
			// not) must not be replayed.
			at := tp.recs[len(tp.recs)-1].next.Offset + 8 + rng.Int64N(200)
			writeAt(t, tp.path(dir, tp.lastFile()), at, appendRecord(nil, []byte("phantom"), fileSalt(fileFormatV2, tp.lastFile())))
			return len(tp.recs)
		}},
		{name: "zero the middle of a record in the last file", damage: func(t *testing.T, tp template, dir string, rng *rand.Rand) int {
			in := tp.recordsIn(tp.lastFile())
			k := in[rng.IntN(len(in))]
			zeroMiddle(t, tp.path(dir, tp.lastFile()), tp.recs[k])
			return k
		}},
		{name: "zero the middle of a record in an earlier file", damage: func(t *testing.T, tp template, dir string, rng *rand.Rand) int {
			id := tp.files()[rng.IntN(len(tp.files())-1)]
			in := tp.recordsIn(id)
			k := in[rng.IntN(len(in))]
			zeroMiddle(t, tp.path(dir, id), tp.recs[k])
			return k
		}},
		{name: "zero a length field in an earlier file", damage: func(t *testing.T, tp template, dir string, rng *rand.Rand) int {
			id := tp.files()[rng.IntN(len(tp.files())-1)]
			in := tp.recordsIn(id)
			k := in[rng.IntN(len(in))]
			writeAt(t, tp.path(dir, id), tp.recs[k].pos.Offset, make([]byte, 4))
			return k
		}},
		{name: "flip a bit anywhere in a record", damage: func(t *testing.T, tp template, dir string, rng *rand.Rand) int {
			k := rng.IntN(len(tp.recs))
			r := tp.recs[k]
			flipBit(t, tp.path(dir, r.pos.File), r.pos.Offset+rng.Int64N(r.next.Offset-r.pos.Offset), uint(rng.IntN(8)))
			return k
		}},
		{name: "flip a bit in a file header", damage: func(t *testing.T, tp template, dir string, rng *rand.Rand) int {
			id := tp.files()[rng.IntN(len(tp.files()))]
			flipBit(t, tp.path(dir, id), rng.Int64N(fileHeaderSize), uint(rng.IntN(8)))
			return tp.recordsIn(id)[0]
		}},
		{name: "missing middle file", damage: func(t *testing.T, tp template, dir string, rng *rand.Rand) int {
			id := tp.files()[1+rng.IntN(len(tp.files())-2)]
			must.NoError(t, os.Remove(tp.path(dir, id)))
			return tp.recordsIn(id)[0]
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for it := range iterations {
				t.Run(fmt.Sprint(it), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(uint64(it), 77))
					dir := tp.copy(t)
					survivors := tc.damage(t, tp, dir, rng)
					checkCut(t, tp, dir, survivors)
				})
			}
		})
	}
}

// checkCut replays a damaged copy and checks that exactly the first
// survivors records come back, that the cut is durable, and that appends
// continue after it.
func checkCut(t *testing.T, tp template, dir string, survivors int) {
	t.Helper()
	cfg := testConfig(t, dir)
	var want []replayed // nil when nothing survives, like a replay's result
	if survivors > 0 {
		want = tp.recs[:survivors]
	}

	j, got := openReplay(t, cfg, Position{})
	must.Equal(t, want, got)
	cut := j.Stats().ReplayCut
	if survivors < len(tp.recs) && cut.IsZero() {
		// Truncation on a boundary leaves nothing to zero; anything else
		// that lost records must have cut.
		must.True(t, slices.Contains(tp.recordsIn(tp.lastFile()), survivors), "lost records without a cut")
	}
	must.NoError(t, j.Close())

	// The cut is durable: the next open finds nothing to cut and the same
	// records.
	j, got = openReplay(t, cfg, Position{})
	must.Equal(t, want, got)
	must.Zero(t, j.Stats().ReplayCutBytes, "second open cut again")
	more := appendSeq(t, j, [][]byte{[]byte("new one"), []byte("new two")})
	if survivors > 0 {
		must.Equal(t, 1, more[0].end.Compare(want[survivors-1].next))
	}
	must.NoError(t, j.Close())

	all := reopenRecords(t, cfg, Position{})
	must.Len(t, all, survivors+2)
	must.Equal(t, tp.recs[:survivors], all[:survivors])
	must.Equal(t, []byte("new one"), all[survivors].data)
	must.Equal(t, []byte("new two"), all[survivors+1].data)
	requireOrdered(t, all)
	if survivors > 0 {
		// Replaying from the last surviving record's end finds the new ones.
		tail := reopenRecords(t, cfg, want[survivors-1].next)
		must.Equal(t, all[survivors:], tail)
	}
}

func TestReplaySkipsDamageBeforeFrom(t *testing.T) {
	tp := buildTemplate(t, 300)
	in := tp.recordsIn(tp.files()[1])
	k := in[len(in)/2]
	from := tp.recs[k+3].next // same file, after the damage

	dir := tp.copy(t)
	zeroMiddle(t, tp.path(dir, tp.recs[k].pos.File), tp.recs[k])
	cfg := testConfig(t, dir)
	j, got := openReplay(t, cfg, from)
	must.Equal(t, tp.recs[k+4:], got, "everything after from is replayed")
	must.Zero(t, j.Stats().ReplayCutBytes)
	more := appendSeq(t, j, [][]byte{[]byte("after")})
	must.NoError(t, j.Close())
	// Appends after a replay go into a new file.
	must.Equal(t, append(slices.Clone(tp.recs[k+4:]), replayed{pos: Position{File: more[0].end.File, Offset: fileHeaderSize}, next: more[0].end, data: []byte("after")}),
		reopenRecords(t, cfg, from))
	less(t, got[len(got)-1].next.File, more[0].end.File)
}

func TestReplayQuarantinesLaterFiles(t *testing.T) {
	tp := buildTemplate(t, 300)
	files := tp.files()
	next := files[len(files)-1] + 1 // appends after a replay go to a new file
	tests := []struct {
		name           string
		damage         func(dir string) (survivors int)
		wantFiles      []uint64 // journal files left (the next append makes a new one)
		wantQuarantine []uint64
		wantCut        bool // the cut is at the first lost record
	}{
		{
			name: "record in the second file: zero it, rename later files",
			damage: func(dir string) int {
				k := tp.recordsIn(files[1])[2]
				zeroMiddle(t, tp.path(dir, files[1]), tp.recs[k])
				return k
			},
			wantFiles: files[:2], wantQuarantine: files[2:], wantCut: true,
		},
		{
			name: "header of the second file: rename it and later files, keep its bytes",
			damage: func(dir string) int {
				flipBit(t, tp.path(dir, files[1]), 13, 2)
				return tp.recordsIn(files[1])[0]
			},
			wantFiles: files[:1], wantQuarantine: files[1:],
		},
		{
			name: "header of the first file: nothing survives, appends go to a new file",
			damage: func(dir string) int {
				flipBit(t, tp.path(dir, files[0]), 0, 0)
				return 0
			},
			wantFiles: nil, wantQuarantine: files,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tp.copy(t)
			k := tc.damage(dir)
			cfg := testConfig(t, dir)
			j, got := openReplay(t, cfg, Position{})
			must.Equal(t, k, len(got))
			for i := range k {
				must.Equal(t, tp.recs[i], got[i])
			}
			st := j.Stats()
			must.Equal(t, int64(len(tc.wantQuarantine)), st.QuarantinedFiles)
			if tc.wantCut {
				must.Equal(t, tp.recs[k].pos, st.ReplayCut)
			}
			l := journalFiles(t, vfs.Default, dir)
			must.Equal(t, tc.wantFiles, l.files)
			must.Equal(t, tc.wantQuarantine, l.quarantined)
			more := appendSeq(t, j, [][]byte{[]byte("x")})
			must.Equal(t, next, more[0].end.File)
			for _, id := range tc.wantQuarantine {
				// Renamed, not zeroed: the bytes are kept for inspection.
				orig, err := os.ReadFile(tp.path(tp.dir, id))
				must.NoError(t, err)
				kept, err := os.ReadFile(filepath.Join(dir, quarantineName(id)))
				must.NoError(t, err)
				must.Equal(t, len(orig), len(kept))
			}

			must.NoError(t, j.Close())
			all := reopenRecords(t, cfg, Position{})
			must.Len(t, all, k+1)

			// Quarantined files go once a release passes them.
			j, _ = openReplay(t, cfg, more[0].end)
			must.NoError(t, j.ReleaseBefore(more[0].end))
			l = journalFiles(t, vfs.Default, dir)
			for _, id := range l.quarantined {
				atLeast(t, id, more[0].end.File, "a quarantined file before the release point was kept")
			}
			must.NoError(t, j.Close())
		})
	}
}

func countWhile(recs []replayed, ok func(replayed) bool) int {
	n := 0
	for n < len(recs) && ok(recs[n]) {
		n++
	}
	return n
}

func writeAt(t testing.TB, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	must.NoError(t, err)
	defer f.Close()
	_, err = f.WriteAt(b, off)
	must.NoError(t, err)
}

// zeroMiddle zeroes the middle half of r's payload.
func zeroMiddle(t testing.TB, path string, r replayed) {
	t.Helper()
	n := int64(len(r.data))
	writeAt(t, path, r.pos.Offset+recordHeaderSize+n/4, make([]byte, max(1, n/2)))
}

// TestReplayCutSuspect checks which cuts are suspect (may remove synced,
// so possibly acknowledged, records): damage that a crash in the middle of
// the newest group's write can leave is not; damage followed by records or
// files written after it is.
func TestReplayCutSuspect(t *testing.T) {
	tp := buildTemplate(t, 300)
	files := tp.files()
	lastFile := tp.lastFile()
	in := tp.recordsIn(lastFile)
	must.True(t, len(in) >= 3, "the last file holds %d records", len(in))
	lastRec := tp.recs[len(tp.recs)-1]
	tests := []struct {
		name        string
		damage      func(dir string)
		wantSuspect bool
	}{
		{name: "torn last record", wantSuspect: false, damage: func(dir string) {
			must.NoError(t, os.Truncate(tp.path(dir, lastFile), lastRec.pos.Offset+recordHeaderSize+int64(len(lastRec.data))/2))
		}},
		{name: "last record zeroed in the middle", wantSuspect: false, damage: func(dir string) {
			zeroMiddle(t, tp.path(dir, lastFile), lastRec)
		}},
		{name: "torn header of the newest file", wantSuspect: false, damage: func(dir string) {
			path := tp.path(dir, lastFile)
			must.NoError(t, os.Truncate(path, 20))
		}},
		{name: "record followed by records in the last file", wantSuspect: true, damage: func(dir string) {
			zeroMiddle(t, tp.path(dir, lastFile), tp.recs[in[0]])
		}},
		{name: "record in an earlier file", wantSuspect: true, damage: func(dir string) {
			zeroMiddle(t, tp.path(dir, files[0]), tp.recs[tp.recordsIn(files[0])[len(tp.recordsIn(files[0]))-1]])
		}},
		{name: "header of the newest file, records after it", wantSuspect: true, damage: func(dir string) {
			flipBit(t, tp.path(dir, lastFile), 13, 2)
		}},
		{name: "header of an earlier file", wantSuspect: true, damage: func(dir string) {
			flipBit(t, tp.path(dir, files[1]), 13, 2)
		}},
		{name: "missing file", wantSuspect: true, damage: func(dir string) {
			must.NoError(t, os.Remove(tp.path(dir, files[1])))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tp.copy(t)
			tc.damage(dir)
			cfg := testConfig(t, dir)
			var cuts []Cut
			cfg.BeforeCut = func(c Cut) error {
				cuts = append(cuts, c)
				return nil
			}
			j, _ := openReplay(t, cfg, Position{})
			must.Len(t, cuts, 1)
			st := j.Stats()
			must.Equal(t, tc.wantSuspect, cuts[0].Suspect, "cut %+v", cuts[0])
			must.Equal(t, tc.wantSuspect, st.ReplayCutSuspect)
			must.Equal(t, cuts[0].At, st.ReplayCut)
			must.NoError(t, j.Close())
		})
	}
}

// TestBeforeCutErrorCutsNothing: a BeforeCut error fails the replay and
// leaves the damage in place, so the next replay reports it again.
func TestBeforeCutErrorCutsNothing(t *testing.T) {
	tp := buildTemplate(t, 100)
	dir := tp.copy(t)
	files := tp.files()
	zeroMiddle(t, tp.path(dir, files[0]), tp.recs[0])
	cfg := testConfig(t, dir)
	boom := fmt.Errorf("cannot persist")
	cfg.BeforeCut = func(Cut) error { return boom }
	j, err := Open(cfg)
	must.NoError(t, err)
	err = j.Replay(Position{}, nil)
	must.ErrorIs(t, err, boom)
	must.NoError(t, j.Close())
	must.Equal(t, files, journalFiles(t, vfs.Default, dir).files)

	var got []Cut
	cfg.BeforeCut = func(c Cut) error { got = append(got, c); return nil }
	j, recs := openReplay(t, cfg, Position{})
	must.Len(t, recs, 0)
	must.Len(t, got, 1)
	must.True(t, got[0].Suspect)
	must.NoError(t, j.Close())
}
