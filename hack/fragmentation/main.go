// Command fragmentation runs the fragmentation study (internal/alloc/study)
// and writes its table to stdout and its plot to a PNG:
//
//	go run ./hack/fragmentation -png docs/fragmentation.png
//
// The same flags give the same table and plot.
package main

import (
	"flag"
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/ironpool/ironpool/internal/alloc/study"
)

func main() {
	c := study.DefaultConfig
	flag.IntVar(&c.Nodes, "nodes", c.Nodes, "nodes in the pool")
	flag.IntVar(&c.Requests, "requests", c.Requests, "requests in the stream")
	flag.Uint64Var(&c.Seed, "seed", c.Seed, "seed of the pool order, the stream and the random policy")
	flag.Float64Var(&c.MeanLife, "mean-life", c.MeanLife, "mean lease length, in arrivals")
	png := flag.String("png", "", "write the plot of free large nodes over time to this PNG file")
	flag.Parse()
	if c.Nodes < 10 || c.Requests < 1 || c.MeanLife <= 0 {
		fmt.Fprintln(os.Stderr, "fragmentation: -nodes must be at least 10, -requests and -mean-life positive")
		os.Exit(2)
	}
	rs := study.Run(c)
	fmt.Printf("pool %d nodes (60%% small, 30%% medium, 10%% large-gpu), %d requests, mean life %.0f arrivals, seed %d\n\n",
		c.Nodes, c.Requests, c.MeanLife, c.Seed)
	study.Table(os.Stdout, c, rs)
	if *png != "" {
		if err := plotLargeFree(*png, c, rs); err != nil {
			fmt.Fprintln(os.Stderr, "fragmentation:", err)
			os.Exit(1)
		}
	}
}

// plotLargeFree draws, per policy, the free large nodes after each arrival
// (averaged over windows of 100 arrivals so the lines stay readable).
func plotLargeFree(path string, c study.Config, rs []study.Result) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Large (GPU) nodes left free — %d nodes, seed %d", c.Nodes, c.Seed)
	p.X.Label.Text = "requests arrived"
	p.Y.Label.Text = "large nodes free"
	p.Legend.Top = true
	colors := []color.RGBA{{R: 0x1f, G: 0x77, B: 0xb4, A: 255}, {R: 0xd6, G: 0x27, B: 0x28, A: 255}, {R: 0x2c, G: 0xa0, B: 0x2c, A: 255}}
	const window = 100
	for i, r := range rs {
		var pts plotter.XYs
		for start := 0; start < len(r.LargeFree); start += window {
			end := min(len(r.LargeFree), start+window)
			sum := 0
			for _, v := range r.LargeFree[start:end] {
				sum += v
			}
			pts = append(pts, plotter.XY{X: float64(end), Y: float64(sum) / float64(end-start)})
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = colors[i%len(colors)]
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (first refusal after %d)", r.Policy, r.FirstRefusal), l)
	}
	return p.Save(8*vg.Inch, 4.5*vg.Inch, path)
}
