package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// docFiles are the Markdown files a reader follows: the README, docs/ and
// the examples' READMEs.
func docFiles(t *testing.T) []string {
	t.Helper()
	root := moduleRoot(t)
	files := []string{filepath.Join(root, "README.md")}
	for _, glob := range []string{"docs/*.md", "examples/*/README.md"} {
		m, err := filepath.Glob(filepath.Join(root, glob))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	return files
}

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*$`)
	mdFence   = regexp.MustCompile("(?ms)^```.*?^```")
)

// anchor is GitHub's anchor of a heading.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ' || r == '-':
			b.WriteRune('-')
		case r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestDocLinks checks that every relative link of the README, docs/*.md
// and the examples' READMEs names a file or directory of the repository,
// and that a #fragment into a Markdown file names one of its headings.
func TestDocLinks(t *testing.T) {
	root := moduleRoot(t)
	for _, file := range docFiles(t) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, file)
		text := mdFence.ReplaceAllString(string(b), "")
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(link, "#")
			target := file
			if path != "" {
				target = filepath.Join(filepath.Dir(file), path)
			}
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s: link %q: %s does not exist", rel, link, path)
				continue
			}
			if frag == "" || !strings.HasSuffix(target, ".md") {
				continue
			}
			tb, err := os.ReadFile(target)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, h := range mdHeading.FindAllStringSubmatch(mdFence.ReplaceAllString(string(tb), ""), -1) {
				if anchor(h[1]) == frag {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("%s: link %q: no heading #%s in %s", rel, link, frag, path)
			}
		}
	}
}

// TestDocFlags checks that every --flag the user documentation mentions
// is a flag of some dlog command, so the docs invent none.
func TestDocFlags(t *testing.T) {
	known := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.InitDefaultHelpFlag()
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	root := newRoot(&env{})
	root.InitDefaultCompletionCmd()
	walk(root)
	flag := regexp.MustCompile(`(?:^|[\s\x60(\[|])--([a-z][a-z0-9-]*)`)
	for _, file := range docFiles(t) {
		base := filepath.Base(file)
		// testing.md and verification.md document go test and scripts too.
		if base == "testing.md" || base == "verification.md" || base == "log.md" || base == "api.md" {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range flag.FindAllStringSubmatch(string(b), -1) {
			if !known[m[1]] {
				t.Errorf("%s mentions --%s, which no dlog command has", filepath.Base(filepath.Dir(file))+"/"+base, m[1])
			}
		}
	}
}
