// Command conformance-table writes make conformance's results as Markdown:
// one row per e2e test with its outcome under each proxy, then the counts
// per proxy. It reads the JUnit reports test/node's TestGuestConformance
// leaves in the results directory, junit_<proxy>-<part>-01.xml.
//
// The reports list every spec of e2e.test, and a spec the focus left out is
// "skipped" with no reason, as is one the part's time budget stopped before
// it ran. The selection itself, one --ginkgo.focus regular expression per
// part, is in the files focus-<part>.txt beside the reports: a selected
// test skipped without a reason is "not run", the others are left out.
package main

import (
	"encoding/xml"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// The proxies in the order of the table's columns.
var proxies = []string{"kube-proxy", "ipvs-proxy"}

type testSuites struct {
	Suites []struct {
		Cases []testCase `xml:"testcase"`
	} `xml:"testsuite"`
}

type testCase struct {
	Name    string   `xml:"name,attr"`
	Time    float64  `xml:"time,attr"`
	Skipped *message `xml:"skipped"`
	Failure *message `xml:"failure"`
	Error   *message `xml:"error"`
}

type message struct {
	Type    string `xml:"type,attr"`
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// outcome is one test's result under one proxy.
type outcome struct {
	State  string // passed, failed, interrupted (by the part's timeout), skipped, not run
	Reason string // a skip's reason
	Secs   float64
}

func main() {
	dir := flag.String("results", "bin/conformance", "the directory with the JUnit reports")
	flag.Parse()
	table, err := build(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance-table:", err)
		os.Exit(1)
	}
	fmt.Print(table)
}

func build(dir string) (string, error) {
	focus, err := readFocus(dir)
	if err != nil {
		return "", err
	}
	results := map[string]map[string]outcome{} // test -> proxy -> outcome
	for _, proxy := range proxies {
		files, err := filepath.Glob(filepath.Join(dir, "junit_"+proxy+"-*.xml"))
		if err != nil {
			return "", err
		}
		for _, f := range files {
			if err := read(f, proxy, focus, results); err != nil {
				return "", fmt.Errorf("%s: %w", f, err)
			}
		}
	}
	names := make([]string, 0, len(results))
	for name := range results {
		names = append(names, name)
	}
	slices.Sort(names)

	var b strings.Builder
	b.WriteString("| e2e test | " + strings.Join(proxies, " | ") + " |\n|---|" + strings.Repeat("---|", len(proxies)) + "\n")
	counts := map[string]map[string]int{}
	for _, proxy := range proxies {
		counts[proxy] = map[string]int{}
	}
	for _, name := range names {
		row := []string{strings.TrimPrefix(name, "[sig-network] Services ")}
		for _, proxy := range proxies {
			o, ok := results[name][proxy]
			if !ok {
				o = outcome{State: "not run"}
			}
			counts[proxy][o.State]++
			cell := o.State
			switch {
			case o.State == "skipped" && o.Reason != "":
				cell += ": " + o.Reason
			case o.State == "passed" || o.State == "failed" || o.State == "interrupted":
				cell += fmt.Sprintf(" (%.0f s)", o.Secs)
			}
			row = append(row, cell)
		}
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	b.WriteString("\n| proxy | run | passed | failed | interrupted | skipped | not run |\n|---|---|---|---|---|---|---|\n")
	for _, proxy := range proxies {
		c := counts[proxy]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d |\n", proxy, c["passed"]+c["failed"]+c["interrupted"],
			c["passed"], c["failed"], c["interrupted"], c["skipped"], c["not run"])
	}
	return b.String(), nil
}

// read adds one report's selected tests to results. A test two parts both
// report (each part's report lists every spec) keeps the outcome of the
// part that ran it.
func read(file, proxy string, focus []*regexp.Regexp, results map[string]map[string]outcome) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var s testSuites
	if err := xml.Unmarshal(data, &s); err != nil {
		return err
	}
	for _, suite := range s.Suites {
		for _, c := range suite.Cases {
			c.Name = strings.TrimPrefix(c.Name, "[It] ")
			if !slices.ContainsFunc(focus, func(re *regexp.Regexp) bool { return re.MatchString(c.Name) }) {
				continue
			}
			o := classify(c)
			if results[c.Name] == nil {
				results[c.Name] = map[string]outcome{}
			}
			if old, ok := results[c.Name][proxy]; !ok || old.State == "not run" {
				results[c.Name][proxy] = o
			}
		}
	}
	return nil
}

// classify turns a selected test's JUnit case into an outcome.
func classify(c testCase) outcome {
	switch {
	case c.Error != nil && c.Error.Type == "interrupted", c.Failure != nil && c.Failure.Type == "timedout":
		return outcome{State: "interrupted", Secs: c.Time}
	case c.Failure != nil || c.Error != nil:
		return outcome{State: "failed", Secs: c.Time}
	case c.Skipped == nil:
		return outcome{State: "passed", Secs: c.Time}
	}
	reason, ok := strings.CutPrefix(c.Skipped.Message, "skipped - ")
	if !ok {
		return outcome{State: "not run"}
	}
	return outcome{State: "skipped", Reason: strings.TrimSpace(strings.SplitN(reason, "\n", 2)[0])}
}

// readFocus reads the selection: the focus-*.txt files, one regular
// expression each.
func readFocus(dir string) ([]*regexp.Regexp, error) {
	files, err := filepath.Glob(filepath.Join(dir, "focus-*.txt"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no focus-*.txt in %s: the selection is unknown", dir)
	}
	var focus []*regexp.Regexp
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		re, err := regexp.Compile(strings.TrimSpace(string(data)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		focus = append(focus, re)
	}
	return focus, nil
}
