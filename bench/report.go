package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// report is everything one side-by-side run measured.
type report struct {
	Machine    string    `json:"machine"`
	Threads    int       `json:"threads"`
	Started    string    `json:"started"`
	LoadBefore string    `json:"load_average_before"`
	LoadAfter  string    `json:"load_average_after"`
	Datasets   []dataset `json:"datasets"`
	Rows       []row     `json:"rows"`
	Kernels    []kernel  `json:"kernels,omitempty"`
	Gorse      string    `json:"gorse,omitempty"`
	Problems   []string  `json:"problems,omitempty"`
}

// machine names the CPU model, cores and memory.
func machine() string {
	model := "?"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.1f GiB", float64(kb)/(1<<20))
		}
	}
	return fmt.Sprintf("%s, %d CPUs%s, %s %s/%s", model, runtime.NumCPU(), mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

const tableHeader = "| system | dataset | model | threads | s/iteration | test RMSE (or ranking) after N it | time to target (s, from start) | load (s) | wall (s) | peak RSS (MB) | notes |\n" +
	"| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"

func (r row) markdown() string {
	quality := r.Metric
	if r.TestRMSE != nil {
		quality = fmt.Sprintf("%.4f", *r.TestRMSE)
	}
	quality = fmt.Sprintf("%s (N = %d)", quality, r.Iterations)
	target := ""
	if r.Target != nil {
		if r.TimeToTarget != nil {
			how := "est."
			if r.TargetExact {
				how = "measured"
			}
			target = fmt.Sprintf("%.2f (≤ %.4f at it %d, %s)", *r.TimeToTarget, *r.Target, r.TargetIter, how)
		} else {
			target = fmt.Sprintf("not reached (≤ %.4f)", *r.Target)
		}
	}
	return fmt.Sprintf("| %s | %s | %s | %d | %.3f | %s | %s | %.2f | %.1f | %.0f | %s |",
		r.System, r.Dataset, r.Model, r.Threads, r.SecPerIter, quality, target, r.LoadSeconds, r.Wall, r.PeakRSSMB, r.Note)
}

// write saves side-by-side.json and .md under dir and prints the Markdown.
func (rep *report) write(dir string, stdout io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "side-by-side.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "Machine: %s. Threads: %d. Started %s; load average before %s, after %s.\n\n",
		rep.Machine, rep.Threads, rep.Started, rep.LoadBefore, rep.LoadAfter)
	sb.WriteString(tableHeader + "\n")
	for _, r := range rep.Rows {
		sb.WriteString(r.markdown() + "\n")
	}
	if len(rep.Kernels) > 0 {
		sb.WriteString("\n| kernel (one core) | GFLOP/s | notes |\n| --- | --- | --- |\n")
		for _, k := range rep.Kernels {
			fmt.Fprintf(&sb, "| %s | %.1f | %s |\n", k.What, k.GFLOPS, k.Note)
		}
	}
	if rep.Gorse != "" {
		fmt.Fprintf(&sb, "\ngorse: %s\n", rep.Gorse)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(&sb, "\nproblem: %s\n", p)
	}
	if err := os.WriteFile(filepath.Join(dir, "side-by-side.md"), []byte(sb.String()), 0o644); err != nil {
		return err
	}
	_, err = io.WriteString(stdout, sb.String())
	return err
}
