package placement

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0)) }

// topo builds a snapshot from "id:region:rack" strings (suffix ":ro" marks
// a read-only bookie).
func topo(specs ...string) []Bookie {
	var out []Bookie
	for _, s := range specs {
		f := strings.Split(s, ":")
		out = append(out, Bookie{ID: f[0], Region: f[1], Rack: f[2], Writable: len(f) < 4})
	}
	return out
}

func regionsOf(bs []Bookie) func(string) string {
	m := map[string]string{}
	for _, b := range bs {
		m[b.ID] = b.Region
	}
	return func(id string) string { return m[id] }
}

// TestBookKeeperRegionExample is BookKeeper's documented example: with
// three regions and minRegions 2, E=Qw=9 needs Qa ≥ 6 (9 − 9/2 = 5).
func TestBookKeeperRegionExample(t *testing.T) {
	var specs []string
	for r := range 3 {
		for i := range 4 {
			specs = append(specs, fmt.Sprintf("r%db%d:region%d:rack%d", r, i, r, i%2))
		}
	}
	bs := topo(specs...)
	p, err := NewRegionAware(bs, seeded(1), 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(9, 9, 5); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "Qa > Qw − Qw/minRegions") {
		t.Fatalf("Validate(9,9,5) = %v, want the Qa > Qw − Qw/minRegions violation", err)
	}
	if _, err := p.NewEnsemble(9, 9, 5, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewEnsemble(9,9,5) = %v, want ErrInvalidConfig", err)
	}
	if err := p.Validate(9, 9, 6); err != nil {
		t.Fatalf("Validate(9,9,6) = %v", err)
	}
	ens, err := p.NewEnsemble(9, 9, 6, nil)
	if err != nil {
		t.Fatal(err)
	}
	perRegion := map[string]int{}
	for _, id := range ens {
		perRegion[regionsOf(bs)(id)]++
	}
	for r, n := range perRegion {
		if n != 3 {
			t.Fatalf("region %s got %d members, want an even 3/3/3 spread: %v", r, n, ens)
		}
	}
	if !AckQuorumsSpanRegions(ens, 9, 6, 2, regionsOf(bs)) {
		t.Fatalf("ensemble %v breaks the rule", ens)
	}
	// Degraded mode: with one region gone, Qa=6 still holds with 5+4.
	two := bs[:8]
	p2, _ := NewRegionAware(two, seeded(2), 2)
	if _, err := p2.NewEnsemble(9, 9, 6, nil); !errors.Is(err, ErrNotEnoughBookies) {
		t.Fatalf("9 members from 8 bookies: %v", err)
	}
}

func TestRegionValidate(t *testing.T) {
	tests := []struct {
		name         string
		minRegions   int
		e, qw, qa    int
		wantContains string
	}{
		{"3/3/2 over 2 could ack in one region", 2, 3, 3, 2, "Qa > Qw − Qw/minRegions"},
		{"ok 3/3/3 over 2", 2, 3, 3, 3, ""},
		{"5/5/3 over 2", 2, 5, 5, 3, "Qa > Qw − Qw/minRegions"},
		{"ok 5/5/4 over 2", 2, 5, 5, 4, ""},
		{"qa below min regions", 3, 3, 3, 2, "Qa ≥ minRegions"},
		{"degraded rule", 2, 4, 4, 2, "Qa > Qw − Qw/minRegions"},
		{"ok 4/4/3 over 2", 2, 4, 4, 3, ""},
		{"ok 6/6/5 over 3", 3, 6, 6, 5, ""},
		{"6/6/4 over 3", 3, 6, 6, 4, "Qa > Qw − Qw/minRegions"},
		{"sizes", 2, 2, 3, 2, "ensemble size must be at least the write quorum"},
		{"min regions 1 is any", 1, 3, 2, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewRegionAware(nil, seeded(1), tc.minRegions)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Validate(tc.e, tc.qw, tc.qa)
			if tc.wantContains == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.wantContains) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig mentioning %q", err, tc.wantContains)
			}
		})
	}
	if _, err := NewRegionAware(nil, seeded(1), 0); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("minRegions 0: %v", err)
	}
}

func TestConstructorErrors(t *testing.T) {
	tests := []struct {
		name    string
		bookies []Bookie
		rng     *rand.Rand
	}{
		{"duplicate", topo("a:r:k", "a:r:k"), seeded(1)},
		{"empty id", []Bookie{{ID: "", Writable: true}}, seeded(1)},
		{"nil rng", topo("a:r:k"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewDefault(tc.bookies, tc.rng); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("NewDefault: %v", err)
			}
			if _, err := NewRackAware(tc.bookies, tc.rng); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("NewRackAware: %v", err)
			}
			if _, err := NewRegionAware(tc.bookies, tc.rng, 2); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("NewRegionAware: %v", err)
			}
		})
	}
}

func TestNotEnoughBookiesMessage(t *testing.T) {
	p, _ := NewDefault(topo("a:r:k", "b:r:k", "c:r:k:ro"), seeded(1))
	_, err := p.NewEnsemble(3, 3, 2, NewSet("b"))
	var nb *NotEnoughBookiesError
	if !errors.As(err, &nb) || !errors.Is(err, ErrNotEnoughBookies) {
		t.Fatalf("err = %v", err)
	}
	if nb.Needed != 3 || nb.Available != 1 {
		t.Fatalf("needed %d available %d, want 3 and 1", nb.Needed, nb.Available)
	}
	if !strings.Contains(err.Error(), "need 3, 1 available") {
		t.Fatalf("message %q", err)
	}
}

func TestReorderReadSet(t *testing.T) {
	bs := topo("a:eu:r1", "b:us:r1", "c:eu:r2", "d:eu:r1", "e:us:r2")
	p, _ := NewDefault(bs, seeded(1))
	tests := []struct {
		name         string
		ws           []string
		region, rack string
		want         []string
	}{
		{"rack then region then others", []string{"b", "c", "a", "e", "d"}, "eu", "r1", []string{"a", "d", "c", "b", "e"}},
		{"rack names are scoped to regions", []string{"a", "b"}, "us", "r1", []string{"b", "a"}},
		{"departed last", []string{"zz", "e", "a"}, "asia", "r9", []string{"e", "a", "zz"}},
		{"stable when equal", []string{"c", "a", "d"}, "eu", "", []string{"c", "a", "d"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := p.ReorderReadSet(tc.ws, tc.region, tc.rack)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("ReorderReadSet = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDeterministicForSeed(t *testing.T) {
	bs := topo("a:eu:r1", "b:us:r1", "c:eu:r2", "d:eu:r1", "e:us:r2", "f:ap:r1", "g:ap:r2")
	reversed := slices.Clone(bs)
	slices.Reverse(reversed)
	run := func(bs []Bookie) string {
		p, _ := NewRegionAware(bs, seeded(42), 2)
		ens, err := p.NewEnsemble(5, 3, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.ReplaceBookie(ens, 1, 3, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(ens, r)
	}
	if a, b := run(bs), run(reversed); a != b {
		t.Fatalf("same seed, different input order: %s vs %s", a, b)
	}
}

// --- property tests against brute force ---

type scenario struct {
	bookies    []Bookie
	e, qw, qa  int
	exclude    Set
	seed       uint64
	minRegions int
}

func drawScenario(t *rapid.T) scenario {
	n := rapid.IntRange(0, 10).Draw(t, "bookies")
	nRegions := rapid.IntRange(1, 4).Draw(t, "regions")
	nRacks := rapid.IntRange(1, 3).Draw(t, "racks")
	var bs []Bookie
	for i := range n {
		bs = append(bs, Bookie{
			ID:       fmt.Sprintf("b%d", i),
			Region:   fmt.Sprintf("g%d", rapid.IntRange(0, nRegions-1).Draw(t, "region")),
			Rack:     fmt.Sprintf("k%d", rapid.IntRange(0, nRacks-1).Draw(t, "rack")),
			Writable: rapid.IntRange(0, 5).Draw(t, "writable") > 0,
		})
	}
	e := rapid.IntRange(1, 6).Draw(t, "E")
	qw := rapid.IntRange(1, e).Draw(t, "Qw")
	qa := rapid.IntRange(1, qw).Draw(t, "Qa")
	ex := Set{}
	for i := range n {
		if rapid.IntRange(0, 6).Draw(t, "exclude") == 0 {
			ex[fmt.Sprintf("b%d", i)] = struct{}{}
		}
	}
	return scenario{bs, e, qw, qa, ex, rapid.Uint64().Draw(t, "seed"), rapid.IntRange(1, 3).Draw(t, "minRegions")}
}

// drawRegionScenario draws only configurations Validate accepts, with
// enough bookies to make most requests interesting.
func drawRegionScenario(t *rapid.T) scenario {
	s := drawScenario(t)
	s.minRegions = rapid.IntRange(1, 3).Draw(t, "minRegions2")
	s.e = rapid.IntRange(s.minRegions, 6).Draw(t, "E2")
	s.qw = rapid.IntRange(s.minRegions, s.e).Draw(t, "Qw2")
	lo := max(s.minRegions, s.qw-s.qw/s.minRegions+1)
	if lo > s.qw {
		t.Skip("no valid Qa")
	}
	s.qa = rapid.IntRange(lo, s.qw).Draw(t, "Qa2")
	return s
}

func (s scenario) candidates() []Bookie {
	var out []Bookie
	for _, b := range s.bookies {
		if b.Writable && !s.exclude.Has(b.ID) {
			out = append(out, b)
		}
	}
	return out
}

func checkBasic(t *rapid.T, s scenario, ens []string) {
	if len(ens) != s.e {
		t.Fatalf("ensemble %v has %d members, want %d", ens, len(ens), s.e)
	}
	byID := map[string]Bookie{}
	for _, b := range s.bookies {
		byID[b.ID] = b
	}
	seen := map[string]bool{}
	for _, id := range ens {
		b, ok := byID[id]
		if !ok || !b.Writable || s.exclude.Has(id) || seen[id] {
			t.Fatalf("ensemble %v: member %s unknown, read-only, excluded or repeated", ens, id)
		}
		seen[id] = true
	}
}

// labelSequences calls f with every sequence of n labels (0..len(cap)-1)
// using label l at most cap[l] times.
func labelSequences(n int, capacity []int, f func([]int) bool) bool {
	seq := make([]int, n)
	used := make([]int, len(capacity))
	var rec func(i int) bool
	rec = func(i int) bool {
		if i == n {
			return f(seq)
		}
		for l := range capacity {
			if used[l] < capacity[l] {
				used[l]++
				seq[i] = l
				if !rec(i + 1) {
					return false
				}
				used[l]--
			}
		}
		return true
	}
	return rec(0)
}

// groupCapacity counts candidates per key.
func groupCapacity(bs []Bookie, key func(Bookie) string) []int {
	idx := map[string]int{}
	var c []int
	for _, b := range bs {
		k := key(b)
		if _, ok := idx[k]; !ok {
			idx[k] = len(c)
			c = append(c, 0)
		}
		c[idx[k]]++
	}
	return c
}

// everyWriteSet reports whether ok holds for the members (as labels) of
// every write set of the cyclic sequence.
func everyWriteSet(seq []int, qw int, ok func(members []int) bool) bool {
	n := len(seq)
	for s := range n {
		ws := make([]int, qw)
		for k := range qw {
			ws[k] = seq[(s+k)%n]
		}
		if !ok(ws) {
			return false
		}
	}
	return true
}

func notOneRack(members []int) bool {
	for _, m := range members {
		if m != members[0] {
			return true
		}
	}
	return false
}

// ackQuorumsSpan is the brute-force rule: every qa-subset of the write set
// has minRegions distinct labels.
func ackQuorumsSpan(qa, minRegions int) func(members []int) bool {
	return func(members []int) bool {
		ok := true
		var rec func(start int, chosen []int)
		rec = func(start int, chosen []int) {
			if !ok {
				return
			}
			if len(chosen) == qa {
				d := map[int]bool{}
				for _, c := range chosen {
					d[c] = true
				}
				ok = len(d) >= minRegions
				return
			}
			for i := start; i < len(members); i++ {
				rec(i+1, append(chosen, members[i]))
			}
		}
		rec(0, nil)
		return ok
	}
}

func labelsOf(ens []string, bs []Bookie, key func(Bookie) string) []int {
	byID := map[string]Bookie{}
	for _, b := range bs {
		byID[b.ID] = b
	}
	idx := map[string]int{}
	out := make([]int, len(ens))
	for i, id := range ens {
		k := key(byID[id])
		if _, ok := idx[k]; !ok {
			idx[k] = len(idx)
		}
		out[i] = idx[k]
	}
	return out
}

func TestDefaultProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawScenario(t)
		p, err := NewDefault(s.bookies, seeded(s.seed))
		if err != nil {
			t.Fatal(err)
		}
		ens, err := p.NewEnsemble(s.e, s.qw, s.qa, s.exclude)
		if len(s.candidates()) < s.e {
			if !errors.Is(err, ErrNotEnoughBookies) {
				t.Fatalf("NewEnsemble with %d candidates for E=%d: %v", len(s.candidates()), s.e, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		checkBasic(t, s, ens)
	})
}

func TestRackAwareProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawScenario(t)
		p, err := NewRackAware(s.bookies, seeded(s.seed))
		if err != nil {
			t.Fatal(err)
		}
		ens, err := p.NewEnsemble(s.e, s.qw, s.qa, s.exclude)
		cands := s.candidates()
		if len(cands) < s.e {
			if !errors.Is(err, ErrNotEnoughBookies) {
				t.Fatalf("NewEnsemble with %d candidates for E=%d: %v", len(cands), s.e, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		checkBasic(t, s, ens)
		feasible := !labelSequences(s.e, groupCapacity(cands, rackKey), func(seq []int) bool {
			return !everyWriteSet(seq, s.qw, notOneRack)
		})
		got := everyWriteSet(labelsOf(ens, s.bookies, rackKey), s.qw, notOneRack)
		if feasible && !got {
			t.Fatalf("a layout with two racks per write set exists but got %v (E=%d Qw=%d)", ens, s.e, s.qw)
		}
	})
}

func TestRegionAwareProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawScenario(t)
		if rapid.Bool().Draw(t, "valid config") {
			s = drawRegionScenario(t)
		}
		p, err := NewRegionAware(s.bookies, seeded(s.seed), s.minRegions)
		if err != nil {
			t.Fatal(err)
		}
		ens, err := p.NewEnsemble(s.e, s.qw, s.qa, s.exclude)
		if p.Validate(s.e, s.qw, s.qa) != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("invalid config accepted: %v", err)
			}
			return
		}
		cands := s.candidates()
		region := func(b Bookie) string { return b.Region }
		rule := ackQuorumsSpan(s.qa, s.minRegions)
		feasible := len(cands) >= s.e && !labelSequences(s.e, groupCapacity(cands, region), func(seq []int) bool {
			return !everyWriteSet(seq, s.qw, rule)
		})
		if !feasible {
			if !errors.Is(err, ErrNotEnoughBookies) {
				t.Fatalf("infeasible request (E=%d Qw=%d Qa=%d min %d, candidates %v) got %v, %v",
					s.e, s.qw, s.qa, s.minRegions, cands, ens, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("feasible request (E=%d Qw=%d Qa=%d min %d, candidates %v) failed: %v",
				s.e, s.qw, s.qa, s.minRegions, cands, err)
		}
		checkBasic(t, s, ens)
		if !everyWriteSet(labelsOf(ens, s.bookies, region), s.qw, rule) {
			t.Fatalf("ensemble %v breaks the region rule", ens)
		}
		if !AckQuorumsSpanRegions(ens, s.qw, s.qa, s.minRegions, regionsOf(s.bookies)) {
			t.Fatalf("AckQuorumsSpanRegions disagrees on %v", ens)
		}
	})
}

func TestAckQuorumsSpanRegionsAgainstBruteForce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := rapid.IntRange(1, 7).Draw(t, "E")
		qw := rapid.IntRange(1, e).Draw(t, "Qw")
		qa := rapid.IntRange(1, qw).Draw(t, "Qa")
		minRegions := rapid.IntRange(1, 4).Draw(t, "minRegions")
		labels := rapid.SliceOfN(rapid.IntRange(0, 3), e, e).Draw(t, "regions")
		ens := make([]string, e)
		for i := range ens {
			ens[i] = fmt.Sprint(i)
		}
		regionOf := func(id string) string {
			var i int
			fmt.Sscan(id, &i)
			return fmt.Sprint("g", labels[i])
		}
		got := AckQuorumsSpanRegions(ens, qw, qa, minRegions, regionOf)
		want := everyWriteSet(labels, qw, ackQuorumsSpan(qa, minRegions))
		if got != want {
			t.Fatalf("labels %v Qw=%d Qa=%d min=%d: got %v, brute force %v", labels, qw, qa, minRegions, got, want)
		}
	})
}

func TestRackLayoutPossibleAgainstBruteForce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		counts := rapid.SliceOfN(rapid.IntRange(0, 4), 1, 4).Draw(t, "counts")
		n := 0
		for _, c := range counts {
			n += c
		}
		if n == 0 {
			return
		}
		qw := rapid.IntRange(1, n).Draw(t, "Qw")
		want := !labelSequences(n, counts, func(seq []int) bool {
			return !everyWriteSet(seq, qw, notOneRack)
		})
		if got := rackLayoutPossible(counts, qw); got != want {
			t.Fatalf("counts %v Qw=%d: rackLayoutPossible=%v, brute force %v", counts, qw, got, want)
		}
		if want {
			labels, ok := arrange(counts, qw, twoRacks, seeded(1))
			if !ok || !everyWriteSet(labels, qw, notOneRack) {
				t.Fatalf("counts %v Qw=%d: arrange failed (%v, %v)", counts, qw, labels, ok)
			}
		}
	})
}

// drawEnsemble draws an ensemble of s.e distinct ids: snapshot bookies
// (whatever their state) and up to two departed ones.
func drawEnsemble(t *rapid.T, s scenario) []string {
	pool := []string{"gone0", "gone1"}
	for _, b := range s.bookies {
		pool = append(pool, b.ID)
	}
	if len(pool) < s.e {
		t.Skip("too few ids")
	}
	return rapid.Permutation(pool).Draw(t, "pool")[:s.e]
}

func checkReplacement(t *rapid.T, s scenario, ens []string, index int, got string) {
	if slices.Contains(ens, got) || s.exclude.Has(got) {
		t.Fatalf("replacement %s for %v[%d] is a member or excluded (%v)", got, ens, index, s.exclude)
	}
	ok := false
	for _, b := range s.bookies {
		ok = ok || (b.ID == got && b.Writable)
	}
	if !ok {
		t.Fatalf("replacement %s is not a writable bookie of the snapshot", got)
	}
}

// replacementCandidates are the writable, non-excluded non-members.
func replacementCandidates(s scenario, ens []string) []string {
	var out []string
	for _, b := range s.candidates() {
		if !slices.Contains(ens, b.ID) {
			out = append(out, b.ID)
		}
	}
	return out
}

// windowsContaining returns the members of every write set containing
// index (all E starts, duplicates harmless).
func windowsContaining(ens []string, qw, index int) [][]string {
	var out [][]string
	for s := range len(ens) {
		var ws []string
		in := false
		for k := range qw {
			i := (s + k) % len(ens)
			ws = append(ws, ens[i])
			in = in || i == index
		}
		if in {
			out = append(out, ws)
		}
	}
	return out
}

func TestReplaceProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawScenario(t)
		ens := drawEnsemble(t, s)
		index := rapid.IntRange(0, s.e-1).Draw(t, "index")
		cands := replacementCandidates(s, ens)
		for _, policy := range []string{"default", "rack"} {
			var p Policy
			if policy == "default" {
				p, _ = NewDefault(s.bookies, seeded(s.seed))
			} else {
				p, _ = NewRackAware(s.bookies, seeded(s.seed))
			}
			got, err := p.ReplaceBookie(ens, index, s.qw, s.qa, s.exclude)
			if len(cands) == 0 {
				if !errors.Is(err, ErrNotEnoughBookies) {
					t.Fatalf("%s: no candidate, got %q, %v", policy, got, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", policy, err)
			}
			checkReplacement(t, s, ens, index, got)
			if policy != "rack" {
				continue
			}
			rackOf := map[string]string{}
			for _, b := range s.bookies {
				rackOf[b.ID] = rackKey(b)
			}
			score := func(c string) int {
				trial := slices.Clone(ens)
				trial[index] = c
				n := 0
				for _, ws := range windowsContaining(trial, s.qw, index) {
					racks := map[string]bool{}
					for _, id := range ws {
						r, ok := rackOf[id]
						if !ok {
							r = "departed " + id
						}
						racks[r] = true
					}
					if len(racks) >= 2 {
						n++
					}
				}
				return n
			}
			best := 0
			for _, c := range cands {
				best = max(best, score(c))
			}
			if score(got) != best {
				t.Fatalf("rack: replacement %s keeps %d write sets on two racks, %d possible", got, score(got), best)
			}
		}
	})
}

func TestRegionReplaceProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawRegionScenario(t)
		ens := drawEnsemble(t, s)
		index := rapid.IntRange(0, s.e-1).Draw(t, "index")
		p, err := NewRegionAware(s.bookies, seeded(s.seed), s.minRegions)
		if err != nil {
			t.Fatal(err)
		}
		regionOf := map[string]string{}
		for _, b := range s.bookies {
			regionOf[b.ID] = b.Region
		}
		// valid: for every region the departed members might be in (any
		// known region or a new one), every ack quorum of every write set
		// containing index spans minRegions regions.
		valid := func(c string) bool {
			trial := slices.Clone(ens)
			trial[index] = c
			var departed []string
			for _, id := range trial {
				if _, ok := regionOf[id]; !ok {
					departed = append(departed, id)
				}
			}
			choices := []string{"g0", "g1", "g2", "g3", "elsewhere"}
			assign := map[string]string{}
			var rec func(i int) bool
			rec = func(i int) bool {
				if i == len(departed) {
					for _, ws := range windowsContaining(trial, s.qw, index) {
						labels := make([]int, len(ws))
						for k, id := range ws {
							r, ok := regionOf[id]
							if !ok {
								r = assign[id]
							}
							labels[k] = slices.Index(choices, r)
						}
						if !ackQuorumsSpan(s.qa, s.minRegions)(labels) {
							return false
						}
					}
					return true
				}
				for _, r := range choices {
					assign[departed[i]] = r
					if !rec(i + 1) {
						return false
					}
				}
				return true
			}
			return rec(0)
		}
		anyValid := false
		for _, c := range replacementCandidates(s, ens) {
			anyValid = anyValid || valid(c)
		}
		got, err := p.ReplaceBookie(ens, index, s.qw, s.qa, s.exclude)
		if !anyValid {
			if !errors.Is(err, ErrNotEnoughBookies) {
				t.Fatalf("no valid replacement for %v[%d], got %q, %v", ens, index, got, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("valid replacement exists for %v[%d] but: %v", ens, index, err)
		}
		checkReplacement(t, s, ens, index, got)
		if !valid(got) {
			t.Fatalf("replacement %s for %v[%d] breaks the region rule", got, ens, index)
		}
	})
}

// TestReplaceAfterNewEnsemble chains the two calls as the ledger client
// does: a fresh region-aware ensemble, then a replacement of each member in
// turn, keeps the whole-ensemble rule whenever a replacement is found.
func TestReplaceAfterNewEnsemble(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawRegionScenario(t)
		p, _ := NewRegionAware(s.bookies, seeded(s.seed), s.minRegions)
		ens, err := p.NewEnsemble(s.e, s.qw, s.qa, s.exclude)
		if err != nil {
			t.Skip("infeasible")
		}
		for i := range ens {
			r, err := p.ReplaceBookie(ens, i, s.qw, s.qa, s.exclude)
			if err != nil {
				if !errors.Is(err, ErrNotEnoughBookies) {
					t.Fatal(err)
				}
				continue
			}
			ens[i] = r
			if !AckQuorumsSpanRegions(ens, s.qw, s.qa, s.minRegions, regionsOf(s.bookies)) {
				t.Fatalf("after replacing index %d: %v breaks the rule", i, ens)
			}
		}
	})
}

// TestArrangeRegionAgainstBruteForce checks the layout search with the
// region rule directly: it finds a layout exactly when one exists.
func TestArrangeRegionAgainstBruteForce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		counts := rapid.SliceOfN(rapid.IntRange(0, 3), 1, 4).Draw(t, "counts")
		n := 0
		for _, c := range counts {
			n += c
		}
		if n == 0 {
			return
		}
		qw := rapid.IntRange(1, n).Draw(t, "Qw")
		qa := rapid.IntRange(1, qw).Draw(t, "Qa")
		m := rapid.IntRange(1, 3).Draw(t, "minRegions")
		rule := ackQuorumsSpan(qa, m)
		want := !labelSequences(n, counts, func(seq []int) bool { return !everyWriteSet(seq, qw, rule) })
		labels, ok := arrange(counts, qw, regionRule(qa, m), seeded(rapid.Uint64().Draw(t, "seed")))
		if ok != want {
			t.Fatalf("counts %v Qw=%d Qa=%d min=%d: arrange ok=%v, brute force %v", counts, qw, qa, m, ok, want)
		}
		if ok && !everyWriteSet(labels, qw, rule) {
			t.Fatalf("counts %v Qw=%d Qa=%d min=%d: layout %v breaks the rule", counts, qw, qa, m, labels)
		}
	})
}

// TestRackAwareUnevenRacks needs a real layout: round robin over a 5-bookie
// rack and a 2-bookie rack puts three of the big rack in a row.
func TestRackAwareUnevenRacks(t *testing.T) {
	bs := topo("a1:g:A", "a2:g:A", "a3:g:A", "a4:g:A", "a5:g:A", "b1:g:B", "b2:g:B")
	rackOf := map[string]string{}
	for _, b := range bs {
		rackOf[b.ID] = b.Rack
	}
	for seed := range uint64(50) {
		p, _ := NewRackAware(bs, seeded(seed))
		ens, err := p.NewEnsemble(6, 3, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		for s := range ens {
			if rackOf[ens[s]] == rackOf[ens[(s+1)%6]] && rackOf[ens[s]] == rackOf[ens[(s+2)%6]] {
				t.Fatalf("seed %d: write set at %d of %v sits in one rack", seed, s, ens)
			}
		}
	}
}

func TestRackAwareSingleRackStillSucceeds(t *testing.T) {
	p, _ := NewRackAware(topo("a:g:A", "b:g:A", "c:g:A"), seeded(1))
	ens, err := p.NewEnsemble(3, 2, 2, nil)
	if err != nil || len(ens) != 3 {
		t.Fatalf("one rack: %v, %v", ens, err)
	}
}

func TestRegionReplacePreferences(t *testing.T) {
	// E=Qw=4, Qa=3, two regions: eu holds index 0 (x, rack r1) and
	// index 1 (y, rack r2); us holds 2 and 3.
	bs := topo("x:eu:r1", "y:eu:r2", "u1:us:r1", "u2:us:r2",
		"eu-used-rack:eu:r2", "eu-new-rack:eu:r3", "us-new-rack:us:r3")
	ens := []string{"x", "y", "u1", "u2"}
	for seed := range uint64(20) {
		p, _ := NewRegionAware(bs, seeded(seed), 2)
		got, err := p.ReplaceBookie(ens, 0, 4, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got != "eu-new-rack" {
			t.Fatalf("seed %d: replacement %s, want the same region on a rack the write set lacks", seed, got)
		}
	}
	// Excluding the eu candidates leaves only us bookies, which would put
	// three of four members in us: an ack quorum of 3 could sit there.
	p, _ := NewRegionAware(bs, seeded(1), 2)
	_, err := p.ReplaceBookie(ens, 0, 4, 3, NewSet("eu-used-rack", "eu-new-rack"))
	if !errors.Is(err, ErrNotEnoughBookies) {
		t.Fatalf("err = %v, want ErrNotEnoughBookies", err)
	}
}
