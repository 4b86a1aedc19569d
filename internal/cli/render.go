package cli

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/ironpool/ironpool"
)

// The one rendering layer of list and show commands, after OpenStack's
// cliff: a command returns its data (for -o json|yaml) and a Table of named
// columns (for -o table|value|csv); -c COLUMN picks columns, --no-headers
// drops the header line. Commands do not print tables themselves.

// Table is what a list or show command prints.
type Table struct {
	// Columns are lower-case names, as -c takes them.
	Columns []string
	Rows    [][]string
	// Record marks a show command: one row, printed as FIELD VALUE lines
	// in the table format.
	Record bool
}

// columnsAnnotation lists the columns a command prints, so -c is checked
// before anything is sent.
const columnsAnnotation = "ironpool/columns"

// withColumns records the columns c prints and lets it take -o value|csv.
func withColumns(c *cobra.Command, columns []string) *cobra.Command {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[columnsAnnotation] = strings.Join(columns, ",")
	formats := formatsOf(c)
	for _, f := range []string{"value", "csv"} {
		if !slices.Contains(formats, f) {
			formats = append(formats, f)
		}
	}
	return withFormats(c, formats...)
}

// checkColumns refuses -c names the command does not print.
func (a *app) checkColumns(cmd *cobra.Command) error {
	if len(a.columns) == 0 {
		return nil
	}
	s, ok := cmd.Annotations[columnsAnnotation]
	if !ok {
		return ironpool.FieldErrorf("column", "`%s` prints no columns to choose from", cmd.CommandPath()).WithHint("nothing was sent to the server")
	}
	have := strings.Split(s, ",")
	for _, c := range a.columns {
		if !slices.Contains(have, strings.ToLower(c)) && !prefixed(have, c) {
			return ironpool.FieldErrorf("column", "%q is not a column of `%s` (want %s)", truncateArg(c), cmd.CommandPath(), s).
				WithHint("nothing was sent to the server")
		}
	}
	return nil
}

// prefixed reports whether c falls under a "PREFIX.*" column (fields.KEY).
func prefixed(have []string, c string) bool {
	for _, h := range have {
		if p, ok := strings.CutSuffix(h, "*"); ok && strings.HasPrefix(c, p) && len(c) > len(p) {
			return true
		}
	}
	return false
}

// render prints data (json, yaml) or t (table, value, csv), with the
// columns -c chose.
func (a *app) render(w io.Writer, data any, t Table) error {
	t = a.pick(t)
	switch a.output {
	case "json", "yaml":
		if len(a.columns) > 0 {
			data = t.objects()
		}
		if a.output == "json" {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(data)
		}
		return yaml.NewEncoder(w).Encode(toPlain(data))
	case "value":
		for _, r := range t.Rows {
			if t.Record {
				for _, v := range r {
					fmt.Fprintln(w, v)
				}
				continue
			}
			fmt.Fprintln(w, strings.Join(r, " "))
		}
		return nil
	case "csv":
		cw := csv.NewWriter(w)
		if !a.noHeaders {
			cw.Write(t.Columns)
		}
		cw.WriteAll(t.Rows)
		return cw.Error()
	default:
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		if t.Record {
			for _, r := range t.Rows {
				for i, v := range r {
					fmt.Fprintf(tw, "%s\t%s\n", t.Columns[i], v)
				}
			}
			return tw.Flush()
		}
		if !a.noHeaders {
			fmt.Fprintln(tw, strings.ToUpper(strings.Join(t.Columns, "\t")))
		}
		for _, r := range t.Rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		return tw.Flush()
	}
}

// pick keeps the -c columns, in the order given.
func (a *app) pick(t Table) Table {
	if len(a.columns) == 0 {
		return t
	}
	idx := make([]int, 0, len(a.columns))
	for _, c := range a.columns {
		i := slices.Index(t.Columns, strings.ToLower(c))
		if i < 0 {
			i = slices.Index(t.Columns, c) // fields.KEY keeps its case
		}
		if i >= 0 {
			idx = append(idx, i)
		}
	}
	out := Table{Record: t.Record}
	for _, i := range idx {
		out.Columns = append(out.Columns, t.Columns[i])
	}
	for _, r := range t.Rows {
		row := make([]string, len(idx))
		for j, i := range idx {
			if i < len(r) {
				row[j] = r[i]
			}
		}
		out.Rows = append(out.Rows, row)
	}
	return out
}

// objects is t as JSON objects: one for a record, a list otherwise.
func (t Table) objects() any {
	var list []map[string]string
	for _, r := range t.Rows {
		m := map[string]string{}
		for i, c := range t.Columns {
			m[c] = r[i]
		}
		list = append(list, m)
	}
	if t.Record && len(list) == 1 {
		return list[0]
	}
	return list
}

func toPlain(v any) any {
	b, _ := json.Marshal(v)
	var plain any
	json.Unmarshal(b, &plain)
	return plain
}

func itoa(n int) string  { return fmt.Sprint(n) }
func i64(n int64) string { return fmt.Sprint(n) }
