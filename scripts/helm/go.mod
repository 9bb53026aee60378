// Pins the helm command line that the chart's tests use (scripts/setup/helm.sh builds it
// into .tools/bin/helm, the way the test control plane is built).
module kubellm.dev/tools/helm

go 1.26.0

require helm.sh/helm/v3 v3.22.1
