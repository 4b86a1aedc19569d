package cli_test

import (
	"strings"
	"testing"

	"ironpool/internal/cli"
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
