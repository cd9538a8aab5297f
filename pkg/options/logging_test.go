package options

import (
	"strings"
	"testing"

	logsapi "k8s.io/component-base/logs/api/v1"
)

// TestLoggingFeatureGate: the logging gates given as flags or in the file
// (the flag winning) decide which logging options are allowed, as in
// kube-proxy, where ValidateAndApply used to be given no gate.
func TestLoggingFeatureGate(t *testing.T) {
	alphaFile := "\nfeatureGates:\n  LoggingAlphaOptions: true\nlogging:\n  options:\n    text:\n      infoBufferSize: 1Ki\n"
	for _, tc := range []struct {
		name string
		file string // config file body; "" for none
		args []string
		want string // part of the logging validation's error; "" for none
	}{
		{"alpha options with the gate as a flag", "",
			[]string{"--feature-gates=LoggingAlphaOptions=true", "--log-text-split-stream"}, ""},
		{"alpha options with the gate in the file", alphaFile, nil, ""},
		{"alpha options in the file, the gate as a flag", "\nlogging:\n  options:\n    json:\n      splitStream: true\n",
			[]string{"--feature-gates=LoggingAlphaOptions=true"}, ""},
		{"alpha options without the gate", "", []string{"--log-text-split-stream"},
			"options.text.splitStream: Forbidden: Feature LoggingAlphaOptions is disabled"},
		{"the flag's gates win over the file's", alphaFile, []string{"--feature-gates=LoggingAlphaOptions=false"},
			"options.text.infoBufferSize: Forbidden: Feature LoggingAlphaOptions is disabled"},
		{"json needs LoggingBetaOptions", "", []string{"--feature-gates=LoggingBetaOptions=false", "--logging-format=json"},
			"Log format json is disabled, see LoggingBetaOptions feature"},
		{"json by default", "", []string{"--logging-format=json"}, ""},
		{"AllAlpha turns the alpha logging gate on", "", []string{"--feature-gates=AllAlpha=true", "--log-text-split-stream"}, ""},
		{"a gate by name wins over AllAlpha", "", []string{"--feature-gates=AllAlpha=true,LoggingAlphaOptions=false", "--log-text-split-stream"},
			"options.text.splitStream: Forbidden: Feature LoggingAlphaOptions is disabled"},
		{"AllBeta=false turns the beta logging gate off", "", []string{"--feature-gates=AllBeta=false", "--logging-format=json"},
			"Log format json is disabled, see LoggingBetaOptions feature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config=" + writeConfig(t, tc.file)}, args...)
			}
			o, stage, err := parse(args...)
			if err != nil {
				t.Fatalf("%s: %v", stage, err)
			}
			gate, err := o.LoggingFeatureGate()
			if err != nil {
				t.Fatal(err)
			}
			// What logsapi.ValidateAndApply checks before it applies.
			got := logsapi.Validate(o.Logging, gate, nil).ToAggregate()
			switch {
			case tc.want == "" && got != nil:
				t.Errorf("logging configuration refused: %v", got)
			case tc.want != "" && (got == nil || !strings.Contains(got.Error(), tc.want)):
				t.Errorf("logging validation error %v, want one with %q", got, tc.want)
			}
		})
	}
}

// TestSplitStreamFromFile: the file's splitStream is kept when the
// logging flags are applied over it (they are registered with the
// default false), and only a split-stream flag given changes it.
func TestSplitStreamFromFile(t *testing.T) {
	const gate = "\nfeatureGates:\n  LoggingAlphaOptions: true\n"
	for _, tc := range []struct {
		name            string
		file            string
		args            []string
		wantText, wantJ bool
	}{
		{"text from the file", gate + "logging:\n  options:\n    text:\n      splitStream: true\n", nil, true, false},
		{"json from the file", gate + "logging:\n  format: json\n  options:\n    json:\n      splitStream: true\n", nil, false, true},
		{"both from the file, with another logging flag", gate + "logging:\n  options:\n    text:\n      splitStream: true\n    json:\n      splitStream: true\n",
			[]string{"-v=2"}, true, true},
		{"a flag wins over the file", gate + "logging:\n  options:\n    text:\n      splitStream: true\n",
			[]string{"--log-text-split-stream=false", "--log-json-split-stream"}, false, true},
		{"a file without it", gate, nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, stage, err := parse(append([]string{"--config=" + writeConfig(t, tc.file)}, tc.args...)...)
			if err != nil {
				t.Fatalf("%s: %v", stage, err)
			}
			if got := o.Logging.Options.Text.SplitStream; got != tc.wantText {
				t.Errorf("text splitStream = %t, want %t", got, tc.wantText)
			}
			if got := o.Logging.Options.JSON.SplitStream; got != tc.wantJ {
				t.Errorf("json splitStream = %t, want %t", got, tc.wantJ)
			}
		})
	}
}
