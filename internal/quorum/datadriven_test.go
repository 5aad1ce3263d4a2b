package quorum

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/*.txt expectations with the current output")

// TestDataDriven runs the scripts in testdata/*.txt. Each case is a command
// line, a line "----", then the expected output up to a blank line. Lines
// starting with # are comments. Run with -rewrite to regenerate outputs.
//
// Commands:
//
//	init E Qw Qa b0,b1,...        new Tracker
//	add                           Tracker.Add
//	ack ENTRY INDEX BOOKIE        Tracker.Ack
//	fail INDEX                    Tracker.Fail
//	begin | abort                 BeginChange / AbortChange
//	commit INDEX=BOOKIE ...       CommitChange
//	state                         LAC, next, ensemble, failed, stalled
//	coverage E Qw Qa STATES       Params.Coverage (A answered, P pending, F failed)
//	decide Qw Qa RESULTS          Params.DecideEntry (D data, N no-entry, L no-ledger, U unknown, P pending)
//	scan LAC WINDOW               NewScan
//	next                          Scan.Next until the window is full
//	record ENTRY DECISION         Scan.Record (present, absent, unrecoverable)
func TestDataDriven(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runScript(t, file) })
	}
}

type ddCase struct {
	comments []string
	cmd      string
	want     string
	line     int
}

func parseScript(t *testing.T, file string) []ddCase {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var cases []ddCase
	var comments []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "#") || (strings.TrimSpace(l) == "" && len(comments) > 0):
			comments = append(comments, l)
			continue
		case strings.TrimSpace(l) == "":
			continue
		}
		c := ddCase{comments: comments, cmd: l, line: i + 1}
		comments = nil
		if i+1 >= len(lines) || lines[i+1] != "----" {
			t.Fatalf("%s:%d: command without ---- separator", file, i+1)
		}
		i += 2
		var out []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			out = append(out, lines[i])
		}
		c.want = strings.Join(out, "\n")
		cases = append(cases, c)
	}
	return cases
}

func runScript(t *testing.T, file string) {
	cases := parseScript(t, file)
	env := &ddEnv{}
	var buf strings.Builder
	for _, c := range cases {
		got := env.run(c.cmd)
		if *rewrite {
			for _, cm := range c.comments {
				buf.WriteString(cm + "\n")
			}
			fmt.Fprintf(&buf, "%s\n----\n%s\n\n", c.cmd, got)
			continue
		}
		if got != c.want {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, c.line, c.cmd, got, c.want)
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(buf.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type ddEnv struct {
	tr   *Tracker
	scan *Scan
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

func (env *ddEnv) run(line string) (out string) {
	defer func() {
		if r := recover(); r != nil {
			out = fmt.Sprintf("panic: %v", r)
		}
	}()
	f := strings.Fields(line)
	errOr := func(err error, s string) string {
		if err != nil {
			return "error: " + err.Error()
		}
		return s
	}
	switch f[0] {
	case "init":
		p := Params{atoi(f[1]), atoi(f[2]), atoi(f[3])}
		tr, err := NewTracker(p, strings.Split(f[4], ","))
		env.tr = tr
		return errOr(err, "ok")
	case "add":
		id, sends := env.tr.Add()
		return fmt.Sprintf("entry %d sends %s", id, fmtSends(sends))
	case "ack":
		r, err := env.tr.Ack(int64(atoi(f[1])), atoi(f[2]), f[3])
		return errOr(err, "acked "+r.String())
	case "fail":
		stalled, err := env.tr.Fail(atoi(f[1]))
		return errOr(err, fmt.Sprintf("stalled %v", stalled))
	case "begin":
		first, err := env.tr.BeginChange()
		return errOr(err, fmt.Sprintf("new fragment starts at %d", first))
	case "abort":
		r, err := env.tr.AbortChange()
		return errOr(err, "acked "+r.String())
	case "commit":
		repl := map[int]string{}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			repl[atoi(k)] = v
		}
		res, err := env.tr.CommitChange(repl)
		return errOr(err, fmt.Sprintf("fragment %d resend %s\nacked %v", res.FirstEntryID, fmtSends(res.Resend), res.Acked))
	case "state":
		tr := env.tr
		return fmt.Sprintf("lac %d next %d pending %d changing %v\nensemble %v failed %v stalled %v",
			tr.LAC(), tr.NextEntryID(), tr.Pending(), tr.Changing(), tr.Ensemble(), tr.Failed(), tr.Stalled())
	case "coverage":
		p := Params{atoi(f[1]), atoi(f[2]), atoi(f[3])}
		codes := map[string]Response{"A": Answered, "P": Pending, "F": Failed}
		var states []Response
		for _, s := range f[4:] {
			states = append(states, codes[s])
		}
		return p.Coverage(states).String()
	case "decide":
		p := Params{atoi(f[1]), atoi(f[1]), atoi(f[2])}
		codes := map[string]ReadResult{"D": ReadPresent, "N": ReadNoEntry, "L": ReadNoLedger, "U": ReadUnknown, "P": ReadPending}
		var rs []ReadResult
		for _, s := range f[3:] {
			rs = append(rs, codes[s])
		}
		return p.DecideEntry(rs).String()
	case "scan":
		env.scan = NewScan(int64(atoi(f[1])), atoi(f[2]))
		return "ok"
	case "next":
		var ids []int64
		for {
			id, ok := env.scan.Next()
			if !ok {
				break
			}
			ids = append(ids, id)
		}
		return fmt.Sprintf("read %v", ids)
	case "record":
		d := map[string]Decision{"present": Present, "absent": Absent, "unrecoverable": Unrecoverable, "undecided": Undecided}[f[2]]
		r, err := env.scan.Record(int64(atoi(f[1])), d)
		s := env.scan
		res := fmt.Sprintf("confirmed %v state %v last %d", r, s.State(), s.LastEntryID())
		if s.Err() != nil {
			res += "\nerr " + s.Err().Error()
		}
		return errOr(err, res)
	}
	return "unknown command " + f[0]
}

func fmtSends(sends []Send) string {
	if len(sends) == 0 {
		return "none"
	}
	parts := make([]string, len(sends))
	for i, s := range sends {
		parts[i] = fmt.Sprintf("%d@%d:%s", s.EntryID, s.Index, s.Bookie)
	}
	return strings.Join(slices.Clip(parts), " ")
}
