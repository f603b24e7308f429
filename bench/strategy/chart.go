package strategy

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"strings"

	"github.com/spot-scheduler/spot-scheduler/bench/trace"
)

// Chart colours: stacked areas, cheapest tier at the bottom, pending on top.
var (
	tierColors = map[string]color.RGBA{
		trace.Spot:     {46, 160, 67, 255},
		trace.OnDemand: {240, 140, 30, 255},
		trace.Burst:    {214, 39, 40, 255},
		"reserved":     {31, 119, 180, 255},
	}
	pendingColor = color.RGBA{150, 150, 150, 255}
	axisColor    = color.RGBA{60, 60, 60, 255}
	gridColor    = color.RGBA{225, 225, 225, 255}
	eventColor   = color.RGBA{90, 90, 200, 255}
	white        = color.RGBA{255, 255, 255, 255}
)

const (
	chartWidth  = 900
	panelHeight = 150
	marginLeft  = 40
	marginRight = 20
	titleHeight = 16
	topHeight   = 30
	bottomSpace = 26
)

// Chart writes a PNG: one panel per run, pods per tier over time as stacked areas (pending in
// grey on top), trace events as vertical lines.
func Chart(w io.Writer, tr *trace.Trace, runs []*Run) error {
	tiers := tr.TiersByPrice()
	peak := 1
	for _, run := range runs {
		for _, s := range run.Samples {
			total := s.Pending
			for _, n := range s.PodsPerTier {
				total += n
			}
			peak = max(peak, total)
		}
	}
	peak = (peak + 4) / 5 * 5
	height := topHeight + len(runs)*(panelHeight+titleHeight+bottomSpace)
	img := image.NewRGBA(image.Rect(0, 0, chartWidth, height))
	fill(img, img.Bounds(), white)

	// Legend.
	x := marginLeft
	drawText(img, x, 8, "PODS PER TIER OVER TIME - TRACE "+strings.ToUpper(tr.Name), axisColor)
	x = chartWidth - 330
	for _, tier := range append(append([]string{}, tiers...), "pending") {
		c := pendingColor
		if tier != "pending" {
			c = tierColors[tier]
		}
		fill(img, image.Rect(x, 8, x+10, 15), c)
		drawText(img, x+13, 9, strings.ToUpper(tier), axisColor)
		x += 16 + 4*len(tier) + 24
	}

	plotW := chartWidth - marginLeft - marginRight
	for i, run := range runs {
		top := topHeight + i*(panelHeight+titleHeight+bottomSpace)
		drawText(img, marginLeft, top+4, strings.ToUpper(run.Strategy), axisColor)
		y0 := top + titleHeight
		area := image.Rect(marginLeft, y0, marginLeft+plotW, y0+panelHeight)
		// Horizontal grid and y labels.
		for v := 0; v <= peak; v += max(1, peak/5) {
			y := area.Max.Y - v*panelHeight/peak
			hline(img, area.Min.X, area.Max.X, y, gridColor)
			drawText(img, 4, y-2, fmt.Sprintf("%3d", v), axisColor)
		}
		xOf := func(t float64) int { return area.Min.X + int(t/tr.Duration*float64(plotW)) }
		// Stacked areas, sample by sample.
		for j, s := range run.Samples {
			end := tr.Duration
			if j+1 < len(run.Samples) {
				end = run.Samples[j+1].T
			}
			x0, x1 := xOf(s.T), xOf(end)
			if x1 <= x0 {
				x1 = x0 + 1
			}
			base := 0
			stack := func(n int, c color.RGBA) {
				if n <= 0 {
					return
				}
				ya := area.Max.Y - base*panelHeight/peak
				yb := area.Max.Y - (base+n)*panelHeight/peak
				fill(img, image.Rect(x0, yb, x1, ya), c)
				base += n
			}
			for _, tier := range tiers {
				stack(s.PodsPerTier[tier], tierColors[tier])
			}
			stack(s.Pending, pendingColor)
		}
		for _, e := range tr.Events {
			x := xOf(e.At)
			for y := area.Min.Y; y < area.Max.Y; y += 4 {
				fill(img, image.Rect(x, y, x+1, y+2), eventColor)
			}
		}
		// Axes and x labels (seconds of replay).
		hline(img, area.Min.X, area.Max.X, area.Max.Y, axisColor)
		fill(img, image.Rect(area.Min.X, area.Min.Y, area.Min.X+1, area.Max.Y), axisColor)
		step := 30.0
		if tr.Duration <= 60 {
			step = 10
		}
		for t := 0.0; t <= tr.Duration; t += step {
			x := xOf(t)
			fill(img, image.Rect(x, area.Max.Y, x+1, area.Max.Y+3), axisColor)
			drawText(img, x-6, area.Max.Y+5, fmt.Sprintf("%.0f", t), axisColor)
		}
	}
	return png.Encode(w, img)
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	fill(img, image.Rect(x0, y, x1, y+1), c)
}

// glyphs is a 3×5 pixel font for the chart's labels (upper case, digits, a little punctuation).
var glyphs = map[rune][5]string{
	'A': {"###", "#.#", "###", "#.#", "#.#"}, 'B': {"##.", "#.#", "##.", "#.#", "##."},
	'C': {"###", "#..", "#..", "#..", "###"}, 'D': {"##.", "#.#", "#.#", "#.#", "##."},
	'E': {"###", "#..", "##.", "#..", "###"}, 'F': {"###", "#..", "##.", "#..", "#.."},
	'G': {"###", "#..", "#.#", "#.#", "###"}, 'H': {"#.#", "#.#", "###", "#.#", "#.#"},
	'I': {"###", ".#.", ".#.", ".#.", "###"}, 'J': {"..#", "..#", "..#", "#.#", "###"},
	'K': {"#.#", "#.#", "##.", "#.#", "#.#"}, 'L': {"#..", "#..", "#..", "#..", "###"},
	'M': {"#.#", "###", "###", "#.#", "#.#"}, 'N': {"##.", "#.#", "#.#", "#.#", "#.#"},
	'O': {"###", "#.#", "#.#", "#.#", "###"}, 'P': {"###", "#.#", "###", "#..", "#.."},
	'Q': {"###", "#.#", "#.#", "###", "..#"}, 'R': {"##.", "#.#", "##.", "#.#", "#.#"},
	'S': {"###", "#..", "###", "..#", "###"}, 'T': {"###", ".#.", ".#.", ".#.", ".#."},
	'U': {"#.#", "#.#", "#.#", "#.#", "###"}, 'V': {"#.#", "#.#", "#.#", "#.#", ".#."},
	'W': {"#.#", "#.#", "###", "###", "#.#"}, 'X': {"#.#", "#.#", ".#.", "#.#", "#.#"},
	'Y': {"#.#", "#.#", ".#.", ".#.", ".#."}, 'Z': {"###", "..#", ".#.", "#..", "###"},
	'0': {"###", "#.#", "#.#", "#.#", "###"}, '1': {".#.", "##.", ".#.", ".#.", "###"},
	'2': {"###", "..#", "###", "#..", "###"}, '3': {"###", "..#", "###", "..#", "###"},
	'4': {"#.#", "#.#", "###", "..#", "..#"}, '5': {"###", "#..", "###", "..#", "###"},
	'6': {"###", "#..", "###", "#.#", "###"}, '7': {"###", "..#", "..#", "..#", "..#"},
	'8': {"###", "#.#", "###", "#.#", "###"}, '9': {"###", "#.#", "###", "..#", "###"},
	'-': {"...", "...", "###", "...", "..."}, '.': {"...", "...", "...", "...", ".#."},
	':': {"...", ".#.", "...", ".#.", "..."}, '/': {"..#", "..#", ".#.", "#..", "#.."},
	'(': {".#.", "#..", "#..", "#..", ".#."}, ')': {".#.", "..#", "..#", "..#", ".#."},
}

// drawText draws s at (x, y) (top left), 4 px per character.
func drawText(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range s {
		if g, ok := glyphs[r]; ok {
			for dy, row := range g {
				for dx, p := range row {
					if p == '#' {
						img.SetRGBA(x+dx, y+dy, c)
					}
				}
			}
		}
		x += 4
	}
}

// Bar is one bar of IntervalChart: a value with its interval.
type Bar struct {
	Label         string
	Value, Lo, Hi float64
}

// IntervalChart writes a PNG of horizontal bars (one per label) with each bar's interval as a
// whisker, scaled from 0 to the largest upper end.
func IntervalChart(w io.Writer, title, unit string, bars []Bar) error {
	const rowHeight, left, right = 24, 170, 60
	height := topHeight + len(bars)*rowHeight + bottomSpace
	img := image.NewRGBA(image.Rect(0, 0, chartWidth, height))
	fill(img, img.Bounds(), white)
	drawText(img, marginLeft, 8, strings.ToUpper(title), axisColor)
	top := 0.0
	for _, b := range bars {
		top = max(top, b.Hi, b.Value)
	}
	if top <= 0 {
		top = 1
	}
	plotW := chartWidth - left - right
	xOf := func(v float64) int { return left + int(v/top*float64(plotW)) }
	for i, b := range bars {
		y := topHeight + i*rowHeight
		drawText(img, 4, y+8, strings.ToUpper(b.Label), axisColor)
		fill(img, image.Rect(left, y+4, xOf(b.Value), y+rowHeight-4), tierColors[trace.Spot])
		lo, hi := xOf(b.Lo), xOf(b.Hi)
		hline(img, lo, hi+1, y+rowHeight/2, axisColor)
		fill(img, image.Rect(lo, y+6, lo+1, y+rowHeight-6), axisColor)
		fill(img, image.Rect(hi, y+6, hi+1, y+rowHeight-6), axisColor)
		drawText(img, xOf(max(b.Hi, b.Value))+6, y+8, fmt.Sprintf("%.2f %s", b.Value, strings.ToUpper(unit)), axisColor)
	}
	y := topHeight + len(bars)*rowHeight
	hline(img, left, left+plotW, y, axisColor)
	for k := 0; k <= 4; k++ {
		v := top * float64(k) / 4
		x := xOf(v)
		fill(img, image.Rect(x, y, x+1, y+3), axisColor)
		drawText(img, x-6, y+5, fmt.Sprintf("%.0f", v), axisColor)
	}
	return png.Encode(w, img)
}
