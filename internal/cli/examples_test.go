package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ironpool/ironpool/internal/cli"
)

// shellWords splits a command line the way sh would for the quoting the
// examples use: single and double quotes, backslash-newline.
func shellWords(line string) []string {
	var out []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case quote != 0 && ch == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(ch)
		case ch == '\'' || ch == '"':
			quote, in = ch, true
		case ch == ' ' || ch == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		case ch == '>' || ch == '|':
			if in {
				out = append(out, cur.String())
			}
			return out // a redirection or a pipe ends the ironpool command
		default:
			cur.WriteByte(ch)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// TestHelpExamples: every command has examples in its help, and every
// example names a real command with flags it takes.
func TestHelpExamples(t *testing.T) {
	root := cli.Root(cli.Env{})
	checked := 0
	for _, c := range allCommands(root) {
		if !c.Runnable() || c.Hidden || strings.HasPrefix(c.CommandPath(), "ironpool completion") || c.Name() == "help" {
			continue
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s has no example in its help", c.CommandPath())
			continue
		}
		text := strings.ReplaceAll(c.Example, "\\\n", " ")
		for _, line := range strings.Split(text, "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "#") || line == "" {
				continue
			}
			// Lines like out=$(ironpool …) || exit: check the ironpool part.
			if i := strings.Index(line, "ironpool "); i >= 0 {
				line = line[i:]
			} else {
				continue
			}
			line = strings.TrimSuffix(strings.SplitN(line, ") ||", 2)[0], ")")
			words := shellWords(line)[1:]
			cmd, rest, err := cli.Root(cli.Env{}).Find(words)
			if err != nil {
				t.Errorf("%s: example %q: %v", c.CommandPath(), line, err)
				continue
			}
			if cmd.DisableFlagParsing {
				checked++
				continue
			}
			cmd.InitDefaultHelpFlag()
			cmd.InitDefaultVersionFlag()
			if err := cmd.ParseFlags(rest); err != nil {
				t.Errorf("%s: example %q: %v", c.CommandPath(), line, err)
			}
			checked++
		}
	}
	if checked < 60 {
		t.Errorf("checked only %d example lines", checked)
	}
}

// TestManPages: `ironpool man` writes a page per command from the command
// tree, with its flags and examples.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	var out, errb strings.Builder
	code := cli.Run(t.Context(), []string{"man", "--dir", dir}, cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		Getenv: func(string) string { return "" }})
	if code != 0 {
		t.Fatalf("man: exit %d %s", code, errb.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "ironpool-allocate.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".TH \"IRONPOOL\" \"1\"", "--env-file", ".SH EXAMPLE", "(set -e)"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("ironpool-allocate.1 lacks %q", want)
		}
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	if n := len(allCommands(cli.Root(cli.Env{}))); len(pages) < n/2 {
		t.Errorf("%d pages for %d commands", len(pages), n)
	}
}
