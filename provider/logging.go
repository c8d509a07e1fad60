package provider

import (
	"os"
	"strings"
)

// sdkLogLevelVars are the variables that set the level of the plugin SDK's
// own loggers in the provider process (terraform-plugin-go's root and
// protocol loggers, terraform-plugin-framework's subsystem) and of the
// provider's logger.
var sdkLogLevelVars = []string{"TF_LOG_SDK", "TF_LOG_SDK_PROTO", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_PROVIDER_SALLYPORT"}

// QuietSDKLogsUnlessLogging turns the plugin SDK's logging off in this
// process when Terraform is not logging; the plugin binary calls it before
// it serves (see quietSDKLogsUnlessLogging).
func QuietSDKLogsUnlessLogging() { quietSDKLogsUnlessLogging(os.Environ(), os.Setenv) }

// quietSDKLogsUnlessLogging turns the plugin SDK's logging off in this
// process when nobody asked for logs.
//
// terraform-plugin-go defaults every logger of the provider process to
// TRACE: each RPC, every attribute the framework plans or validates, is
// formatted as a JSON line on stderr and sent to Terraform, which drops
// it unless TF_LOG or TF_LOG_PROVIDER is set. On a plan of 1,000
// resources that is ~40% of the provider's CPU (and Terraform's parsing
// of the lines on top). When no TF_LOG* (or TF_ACC_LOG*) variable is set,
// Terraform shows none of these lines, so the loggers are set to "off";
// any such variable leaves everything as it is, so TF_LOG=trace still
// shows every line.
func quietSDKLogsUnlessLogging(environ []string, setenv func(key, value string) error) {
	for _, kv := range environ {
		if strings.HasPrefix(kv, "TF_LOG") || strings.HasPrefix(kv, "TF_ACC_LOG") {
			return
		}
	}
	for _, k := range sdkLogLevelVars {
		_ = setenv(k, "off")
	}
}
