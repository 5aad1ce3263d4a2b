package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

// docExample is one curl command of docs/api.md and the answer the
// document shows for it.
type docExample struct {
	line    int
	method  string
	url     string
	headers [][2]string
	body    string
	want    string // JSON; "…" matches any value
}

// parseDocExamples reads every ```sh block holding a curl command and the
// ```json block that follows it.
func parseDocExamples(t *testing.T, path string) []docExample {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []docExample
	var block []string
	var fence string // "" outside a block
	var blockStart, n int
	var pending *docExample
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case fence == "" && strings.HasPrefix(line, "```"):
			fence, block, blockStart = strings.TrimPrefix(line, "```"), nil, n
		case fence != "" && line == "```":
			text := strings.Join(block, "\n")
			switch fence {
			case "sh":
				if pending != nil {
					t.Fatalf("%s:%d: curl example without a json answer", path, pending.line)
				}
				ex := parseCurl(t, path, blockStart, text)
				pending = &ex
			case "json":
				if pending != nil {
					pending.want = text
					out = append(out, *pending)
					pending = nil
				}
			}
			fence = ""
		case fence != "":
			block = append(block, line)
		}
	}
	if pending != nil {
		t.Fatalf("%s:%d: curl example without a json answer", path, pending.line)
	}
	return out
}

// shellWords splits a command line the way sh does for what the document
// uses: blanks, single-quoted strings and backslash-newline.
func shellWords(s string) ([]string, error) {
	s = strings.ReplaceAll(s, "\\\n", " ")
	var words []string
	var cur strings.Builder
	in, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			cur.WriteByte(c)
		case c == '\'':
			quoted, in = true, true
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote")
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

func parseCurl(t *testing.T, path string, line int, text string) docExample {
	t.Helper()
	w, err := shellWords(text)
	if err != nil || len(w) == 0 || w[0] != "curl" {
		t.Fatalf("%s:%d: not a curl command (%v): %s", path, line, err, text)
	}
	ex := docExample{line: line, method: http.MethodGet}
	for i := 1; i < len(w); i++ {
		switch w[i] {
		case "-X":
			i++
			ex.method = w[i]
		case "-H":
			i++
			k, v, ok := strings.Cut(w[i], ":")
			if !ok {
				t.Fatalf("%s:%d: header %q", path, line, w[i])
			}
			ex.headers = append(ex.headers, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
		case "-d", "--data":
			i++
			ex.body = w[i]
		default:
			if strings.HasPrefix(w[i], "-") {
				t.Fatalf("%s:%d: curl option %q is not understood by this test", path, line, w[i])
			}
			ex.url = w[i]
		}
	}
	if ex.url == "" {
		t.Fatalf("%s:%d: curl without a URL", path, line)
	}
	return ex
}

// matchJSON reports where got differs from want; the string "…" in want
// matches anything, and want's objects may leave fields out.
func matchJSON(want, got any, at string) error {
	if s, ok := want.(string); ok && s == "…" {
		if got == nil {
			return fmt.Errorf("%s: missing", at)
		}
		return nil
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %v", at, got)
		}
		for k, wv := range w {
			if err := matchJSON(wv, g[k], at+"."+k); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: want %d elements, got %v", at, len(w), got)
		}
		for i := range w {
			if err := matchJSON(w[i], g[i], fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
		return nil
	}
	if fmt.Sprint(want) != fmt.Sprint(got) {
		return fmt.Errorf("%s: want %v, got %v", at, want, got)
	}
	return nil
}

// TestDocExamples replays the curl examples of docs/api.md, in order,
// against a live proxy and checks the documented answers.
func TestDocExamples(t *testing.T) {
	const doc = "../../docs/api.md"
	examples := parseDocExamples(t, doc)
	if len(examples) < 10 {
		t.Fatalf("%s: only %d curl examples found", doc, len(examples))
	}
	e := newEnv(t, 3, "memory:")
	p := e.proxy()
	for _, ex := range examples {
		url := strings.Replace(ex.url, "127.0.0.1:7000", p.AdvertiseAddr(), 1)
		req, err := http.NewRequestWithContext(t.Context(), ex.method, url, strings.NewReader(ex.body))
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range ex.headers {
			req.Header.Set(h[0], h[1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s:%d: %v", doc, ex.line, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var want, got any
		if err := json.Unmarshal([]byte(ex.want), &want); err != nil {
			t.Fatalf("%s:%d: documented answer is not JSON: %v", doc, ex.line, err)
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s:%d: answer %d %q is not JSON: %v", doc, ex.line, resp.StatusCode, body, err)
		}
		_, isErr := want.(map[string]any)["code"]
		if isErr != (resp.StatusCode >= 400) {
			t.Fatalf("%s:%d: HTTP %d for %s", doc, ex.line, resp.StatusCode, body)
		}
		if err := matchJSON(want, got, "answer"); err != nil {
			t.Fatalf("%s:%d: %v\ngot:  %s\nwant: %s", doc, ex.line, err, body, ex.want)
		}
	}
}
