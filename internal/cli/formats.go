package cli

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/handoff"
)

// formatsAnnotation is the cobra annotation that lists the -o values a
// command can print. The root's pre-run hook checks -o against it before the
// command runs, so a typo in -o is refused before anything is sent: a verb
// that changes state must never commit and then fail to print.
const formatsAnnotation = "ironpool/formats"

// dataFormats is what every command printing data accepts.
var dataFormats = []string{"table", "json", "yaml"}

// allocationFormats is what a command printing an allocation accepts: the
// data formats plus every handoff format.
var allocationFormats = func() []string {
	out := slices.Clone(dataFormats)
	for _, f := range handoff.Formats {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}()

// withFormats records the -o values c accepts.
func withFormats(c *cobra.Command, formats ...string) *cobra.Command {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[formatsAnnotation] = strings.Join(formats, ",")
	return c
}

// formatsOf returns the -o values cmd accepts: its annotation, or the data
// formats.
func formatsOf(cmd *cobra.Command) []string {
	if s, ok := cmd.Annotations[formatsAnnotation]; ok {
		return strings.Split(s, ",")
	}
	return dataFormats
}

// checkOutput refuses an -o value the command cannot print.
func (a *app) checkOutput(cmd *cobra.Command) error {
	return checkFormat("output", a.output, formatsOf(cmd))
}

func checkFormat(field, got string, allowed []string) error {
	if slices.Contains(allowed, got) {
		return nil
	}
	return ironpool.FieldErrorf(field, "%q is not a format this command prints (want %s)", truncateArg(got), strings.Join(allowed, ", ")).
		WithHint("nothing was sent to the server")
}

func truncateArg(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
