package provider

import (
	"maps"
	"slices"
	"testing"
)

func TestQuietSDKLogsUnlessLogging(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ []string
		quiet   bool
	}{
		{"no logging asked for", []string{"HOME=/root", "SALLYPORT_TOKEN=x"}, true},
		{"TF_LOG", []string{"TF_LOG=debug"}, false},
		{"TF_LOG_PROVIDER", []string{"TF_LOG_PROVIDER=trace"}, false},
		{"an SDK level", []string{"TF_LOG_SDK_FRAMEWORK=trace"}, false},
		{"acceptance test logs", []string{"TF_ACC_LOG_PATH=/tmp/x"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := map[string]string{}
			quietSDKLogsUnlessLogging(tc.environ, func(k, v string) error { set[k] = v; return nil })
			if !tc.quiet {
				if len(set) > 0 {
					t.Errorf("set %v although logging was asked for", set)
				}
				return
			}
			if got := slices.Sorted(maps.Keys(set)); !slices.Equal(got, slices.Sorted(slices.Values(sdkLogLevelVars))) {
				t.Errorf("set %v, want every one of %v", got, sdkLogLevelVars)
			}
			for k, v := range set {
				if v != "off" {
					t.Errorf("%s=%q, want off", k, v)
				}
			}
		})
	}
}
