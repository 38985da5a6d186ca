package diag

import (
	"encoding/json"
	"fmt"
	"html"
	"strings"
	"sync"
	"time"

	"github.com/romboot/romboot/internal/httpd"
)

// Handler serves the diagnostics: / (HTML), /diag.json, /dmesg, /log,
// /healthz and /hello (a fixed 13-byte body for benchmarks). The facts and
// the kernel log are collected at most once a second, however many clients
// ask: a flood of page requests costs copies, not the boot's CPU.
func Handler(src Sources) httpd.Handler {
	var mu sync.Mutex
	var cached Facts
	var at time.Time
	facts := func() Facts {
		mu.Lock()
		defer mu.Unlock()
		if at.IsZero() || time.Since(at) >= time.Second {
			cached, at = Collect(src), time.Now()
		}
		return cached
	}
	var dmesg []byte
	var dmesgAt time.Time
	kernelLog := func(b []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		if dmesgAt.IsZero() || time.Since(dmesgAt) >= time.Second {
			dmesg = append([]byte(strings.Join(KernelLog(1<<20), "\n")), '\n')
			dmesgAt = time.Now()
		}
		return append(b, dmesg...)
	}
	return httpd.HandlerFunc(func(req *httpd.Request, resp *httpd.Response) {
		switch string(req.Path) {
		case "/":
			resp.ContentType = "text/html; charset=utf-8"
			// A token given in the URL goes on to the links.
			q := ""
			if t := httpd.RequestToken(req); t != nil && req.Authorization == nil {
				q = "?token=" + queryEscape(t)
			}
			resp.Body = appendHTML(resp.Body, facts(), q)
		case "/diag.json":
			resp.ContentType = "application/json"
			b, err := json.MarshalIndent(facts(), "", "  ")
			if err != nil {
				resp.Status = 500
			}
			resp.Body = append(append(resp.Body, b...), '\n')
		case "/dmesg":
			resp.Body = kernelLog(resp.Body)
		case "/log":
			if src.Log != nil {
				for _, l := range src.Log.Lines() {
					resp.Body = append(append(resp.Body, Redact(l)...), '\n')
				}
			}
		case "/healthz":
			resp.Body = append(resp.Body, "ok\n"...)
		case "/hello":
			resp.Body = append(resp.Body, "Hello, world\n"...)
		default:
			resp.Status = 404
			resp.Body = append(resp.Body, "not found: try / /diag.json /dmesg /log /healthz\n"...)
		}
	})
}

// AppendHTML renders the facts as one page: plain HTML, tables, an inline
// SVG bar chart of the timeline, no JavaScript.
func AppendHTML(b []byte, f Facts) []byte { return appendHTML(b, f, "") }

// appendHTML renders the page with q (a query string) on its links.
func appendHTML(b []byte, f Facts, q string) []byte {
	w := &htmlWriter{b: b}
	w.raw(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>romboot diagnostics</title>` +
		`<style>body{font-family:monospace;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px;text-align:left}</style></head><body>`)
	w.raw("<h1>romboot diagnostics</h1>\n<table>")
	w.row("romboot version", f.Version)
	w.row("kernel", f.Kernel)
	w.row("command line", f.Cmdline)
	w.row("uptime", fmt.Sprintf("%.1f s", f.UptimeSec))
	if f.State != "" {
		w.row("boot state", f.State)
	}
	w.row("collected at", f.CollectedAt)
	w.raw("</table>\n")

	w.raw("<h2>Boot timeline</h2>\n")
	if len(f.Timeline) == 0 {
		w.raw("<p>no stages recorded</p>\n")
	} else {
		w.raw("<table><tr><th>start</th><th>duration</th><th>stage</th><th>result</th></tr>")
		for _, s := range f.Timeline {
			res := "ok"
			if s.Error != "" {
				res = "FAILED: " + s.Error
			}
			w.cells(fmt.Sprintf("%.3f s", s.StartMS/1000), fmt.Sprintf("%.3f s", s.DurationMS/1000), s.Name, res)
		}
		w.raw("</table>\n")
		w.timelineSVG(f.Timeline)
	}

	w.raw("<h2>Block devices</h2>\n<table><tr><th>name</th><th>size</th><th>type</th><th>label</th><th>UUID</th><th>PARTUUID</th><th>LUKS</th></tr>")
	for _, d := range f.Block {
		l := ""
		if d.LUKS != nil {
			if d.LUKS.Error != "" {
				l = "error: " + d.LUKS.Error
			} else {
				l = fmt.Sprintf("LUKS%d %s; keyslots %s", d.LUKS.Version, d.LUKS.Cipher, strings.Join(d.LUKS.Keyslots, "; "))
			}
		}
		label := d.Label
		if label == "" {
			label = d.PartLabel
		}
		w.cells(d.Name, bytesHuman(d.Size), d.Type, label, d.UUID, d.PartUUID, l)
	}
	w.raw("</table>\n<h2>Mounts</h2>\n<table><tr><th>source</th><th>target</th><th>type</th><th>options</th></tr>")
	for _, m := range f.Mounts {
		w.cells(m.Source, m.Target, m.FSType, m.Options)
	}
	w.raw("</table>\n<h2>Memory and CPUs</h2>\n<table>")
	w.row("memory", fmt.Sprintf("%s total, %s available", bytesHuman(f.Memory.Total), bytesHuman(f.Memory.Available)))
	w.row("CPUs", fmt.Sprintf("%d × %s", f.CPUs.Count, f.CPUs.Model))
	w.raw("</table>\n<h2>PCI devices</h2>\n<table><tr><th>slot</th><th>vendor:device</th><th>class</th></tr>")
	for _, p := range f.PCI {
		w.cells(p.Slot, p.Vendor+":"+p.Device, p.Class)
	}
	w.raw("</table>\n<h2>Network</h2>\n<table><tr><th>interface</th><th>MAC</th><th>state</th><th>addresses</th></tr>")
	for _, n := range f.Net {
		w.cells(n.Name, n.MAC, n.State, strings.Join(n.Addrs, " "))
	}
	w.raw("</table>\n<h2>Kernel log (last 200 lines)</h2>\n<pre>")
	for _, l := range f.KernelLog {
		w.text(l)
		w.raw("\n")
	}
	w.raw("</pre>\n<p>Also:")
	for _, l := range []string{"/diag.json", "/dmesg", "/log"} {
		w.raw(` <a href="`)
		w.text(l + q)
		w.raw(`">` + l + `</a>`)
	}
	w.raw("</p></body></html>\n")
	return w.b
}

type htmlWriter struct{ b []byte }

func (w *htmlWriter) raw(s string)  { w.b = append(w.b, s...) }
func (w *htmlWriter) text(s string) { w.b = append(w.b, html.EscapeString(s)...) }

func (w *htmlWriter) row(k, v string) { w.cells(k, v) }

func (w *htmlWriter) cells(vals ...string) {
	w.raw("<tr>")
	for _, v := range vals {
		w.raw("<td>")
		w.text(v)
		w.raw("</td>")
	}
	w.raw("</tr>\n")
}

// timelineSVG draws one bar per stage on a common time axis.
func (w *htmlWriter) timelineSVG(stages []Stage) {
	end := 0.0
	for _, s := range stages {
		end = max(end, s.StartMS+s.DurationMS)
	}
	if end <= 0 {
		return
	}
	const width, barH, labelW = 600.0, 18.0, 260.0
	h := barH*float64(len(stages)) + 24
	w.raw(fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="boot timeline">`, int(labelW+width+60), int(h)))
	for i, s := range stages {
		y := float64(i) * barH
		x := labelW + s.StartMS/end*width
		bw := max(s.DurationMS/end*width, 1)
		color := "#4a7"
		if s.Error != "" {
			color = "#c44"
		}
		w.raw(fmt.Sprintf(`<text x="0" y="%.0f" font-size="12">`, y+13))
		w.text(s.Name)
		w.raw(fmt.Sprintf(`</text><rect x="%.1f" y="%.0f" width="%.1f" height="%.0f" fill="%s"/><text x="%.1f" y="%.0f" font-size="11">%.2fs</text>`,
			x, y+2, bw, barH-4, color, x+bw+3, y+13, s.DurationMS/1000))
	}
	w.raw(fmt.Sprintf(`<text x="%.0f" y="%.0f" font-size="11">0 s</text><text x="%.0f" y="%.0f" font-size="11">%.2f s</text></svg>`+"\n",
		labelW, h-6, labelW+width-30, h-6, end/1000))
}

// queryEscape percent-encodes all but unreserved URL characters.
func queryEscape(b []byte) string {
	const hex = "0123456789ABCDEF"
	var out []byte
	for _, c := range b {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			out = append(out, c)
		} else {
			out = append(out, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(out)
}
