package main

import (
	"fmt"
	"image/color"
	"slices"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// bindChart draws the distribution of PVC created -> Bound (P2's burst and
// P1's sequential claims) and the floor's create -> exported, as the share
// of claims bound by each time.
func bindChart(rep *report, path string) error {
	p := plot.New()
	p.Title.Text = "Time to Bound: share of claims bound by each time"
	p.X.Label.Text = "seconds after the claim was created (the burst: all within its first seconds)"
	p.Y.Label.Text = "claims bound (%)"
	p.Add(plotter.NewGrid())
	add := func(name string, v []float64, c color.Color) error {
		if len(v) == 0 {
			return nil
		}
		l, err := plotter.NewLine(cdf(v))
		if err != nil {
			return err
		}
		l.Color, l.Width = c, vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(name, l)
		return nil
	}
	if rep.P2 != nil {
		if err := add(fmt.Sprintf("P2 burst: %d claims, %d workers", rep.P2.Claims, rep.P2.Workers), rep.P2.PerClaim, color.RGBA{R: 200, A: 255}); err != nil {
			return err
		}
		if f := rep.P2.Floor; f != nil {
			var secs []float64
			for _, d := range f.PerVolume {
				secs = append(secs, d.Seconds())
			}
			if err := add("P2 floor: same Cinder calls, no Kubernetes (volumes exported by each time)", secs, color.RGBA{B: 200, A: 255}); err != nil {
				return err
			}
		}
	}
	if rep.P1 != nil {
		if err := add(fmt.Sprintf("P1: %d claims one after another", rep.P1.Claims), rep.P1.E2E, color.RGBA{G: 150, A: 255}); err != nil {
			return err
		}
	}
	p.Legend.Top, p.Legend.Left = false, false
	p.Y.Min, p.Y.Max = 0, 100
	return p.Save(8*vg.Inch, 4.5*vg.Inch, path)
}

// cdf is the empirical distribution of v: x the value, y the share (%) of
// values at or below it.
func cdf(v []float64) plotter.XYs {
	s := slices.Clone(v)
	sort.Float64s(s)
	pts := make(plotter.XYs, 0, len(s)+1)
	pts = append(pts, plotter.XY{X: 0, Y: 0})
	for i, x := range s {
		pts = append(pts, plotter.XY{X: x, Y: 100 * float64(i+1) / float64(len(s))})
	}
	return pts
}

// workersChart draws throughput (claims per second, bound and deleted)
// against the number of workers, from P2's sweep.
func workersChart(rep *report, path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Throughput against workers (%d claims at once)", rep.Sweep[0].Claims)
	p.X.Label.Text = "workers (--workers)"
	p.Y.Label.Text = "claims per second"
	p.Add(plotter.NewGrid())
	var bind, del plotter.XYs
	for _, r := range rep.Sweep {
		bind = append(bind, plotter.XY{X: float64(r.Workers), Y: float64(r.Claims) / r.Bind.Seconds()})
		del = append(del, plotter.XY{X: float64(r.Workers), Y: float64(r.Claims) / r.Delete.Seconds()})
	}
	for _, s := range []struct {
		name string
		xy   plotter.XYs
		c    color.Color
	}{{"bound per second", bind, color.RGBA{R: 200, A: 255}}, {"deleted per second", del, color.RGBA{B: 200, A: 255}}} {
		l, pts, err := plotter.NewLinePoints(s.xy)
		if err != nil {
			return err
		}
		l.Color, pts.Color = s.c, s.c
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	p.Legend.Top = true
	p.Y.Min = 0
	return p.Save(8*vg.Inch, 4*vg.Inch, path)
}
