package molteniron

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ironpool/ironpool"
)

// column is one column of a status table: its title, its width in the
// human table, and for the elapsed-time column the precision upstream's
// format string applied ({:<14.12} cuts the text to 12 characters).
type column struct {
	title string
	width int
	prec  int
}

var (
	blobColumns = []column{{"id", 4, 0}, {"name", 6, 0}, {"ipmi_ip", 16, 0}, {"blob", 40, 0},
		{"status", 8, 0}, {"provisioned", 40, 0}, {"time", 14, 12}, {"node_pool", 19, 0}}
	baremetalColumns = []column{{"id", 4, 0}, {"name", 6, 0}, {"ipmi_ip", 9, 0}, {"ipmi_user", 11, 0},
		{"ipmi_password", 15, 0}, {"port_hwaddr", 19, 0}, {"cpu_arch", 10, 0}, {"cpus", 6, 0},
		{"ram_mb", 8, 0}, {"disk_gb", 9, 0}, {"status", 8, 0}, {"provisioned", 40, 0},
		{"time", 14, 12}, {"node_pool", 19, 0}}
)

// status answers status and status_baremetal. Passwords in the blob are
// masked unless the listener acts as an admin: upstream showed every BMC
// password to anyone who could reach the port; ironpool shows them only to
// an allocation's owner (allocate, get_field) or an admin.
func (s *Server) status(ctx context.Context, req Object, baremetal bool) reply {
	typ, rep := text(req, "type")
	if rep != nil {
		return rep
	}
	typ = strings.ToLower(strings.ToUpper(typ))
	if typ != "csv" && typ != "human" {
		return fail(400, "Unknown --type=%s", typ)
	}
	rows, rep := s.allRows(ctx)
	if rep != nil {
		return rep
	}
	now := s.Service.Now().UTC()
	cols := blobColumns
	if baremetal {
		cols = baremetalColumns
	}
	var b strings.Builder
	sep := "+"
	head := "+"
	for _, c := range cols {
		sep += strings.Repeat("-", c.width+2) + "+"
		head += " " + c.title + strings.Repeat(" ", max(0, c.width-len(c.title))) + " +"
	}
	if typ == "human" {
		b.WriteString(sep + "\n" + head + "\n" + sep + "\n")
	}
	for _, r := range rows {
		cells, complete := r.cells(baremetal, now)
		if !complete {
			b.WriteString("blob missing baremetal fields\n")
			continue
		}
		if typ == "csv" {
			for _, c := range cells {
				b.WriteString(c + ",")
			}
			b.WriteString("\n")
			continue
		}
		b.WriteString("|")
		for i, c := range cells {
			if p := cols[i].prec; p > 0 && len(c) > p {
				c = c[:p]
			}
			b.WriteString(" " + c + strings.Repeat(" ", max(0, cols[i].width-len(c))) + " |")
		}
		b.WriteString("\n")
	}
	if typ == "human" {
		b.WriteString(sep + "\n")
	}
	return okReply(Member{"result", b.String()})
}

// cells renders a row's status columns with Python's str(); complete is
// false when a baremetal column is missing from the blob.
func (r *row) cells(baremetal bool, now time.Time) ([]string, bool) {
	elapsed := ""
	if !r.allocatedAt.IsZero() {
		elapsed = timedelta(now.Sub(r.allocatedAt.UTC()))
	}
	head := []string{fmt.Sprint(r.ID), r.Name, r.IPMIIP}
	tail := []string{Str(r.Status), Str(r.Provisioned), elapsed, r.NodePool}
	if !baremetal {
		return append(append(head, Repr(r.Blob)), tail...), true
	}
	for _, k := range []string{"ipmi_user", "ipmi_password", "port_hwaddr", "cpu_arch", "cpus", "ram_mb", "disk_gb"} {
		v, found := r.Blob.Get(k)
		if !found {
			return nil, false
		}
		head = append(head, Str(v))
	}
	return append(head, tail...), true
}

// allRows lists every node in id order (upstream's table order), with the
// owner names recorded at allocate time.
func (s *Server) allRows(ctx context.Context) ([]*row, reply) {
	nodes, err := s.Service.FindNodes(ctx, ironpool.NodeFilter{})
	if err != nil {
		return nil, errorReply(err)
	}
	allocs, err := s.Service.FindAllocations(ctx, ironpool.AllocationFilter{Live: true})
	if err != nil {
		return nil, errorReply(err)
	}
	owners := make(map[string]string, len(allocs))
	for _, a := range allocs {
		if o := a.Metadata[MetaOwner]; o != "" {
			owners[a.ID] = o
		} else {
			owners[a.ID] = a.Owner
		}
	}
	reveal := s.Actor != nil && s.Actor.Role == ironpool.RoleAdmin
	rows := make([]*row, 0, len(nodes))
	for _, n := range nodes {
		if reveal && n.BMC.Password != "" {
			if full, err := s.Service.FindNode(ctx, n.Name, true); err == nil {
				n = full
			}
		}
		rows = append(rows, rowOf(n, owners))
	}
	slices.SortFunc(rows, func(x, y *row) int { return cmp.Compare(x.ID, y.ID) })
	return rows, nil
}
