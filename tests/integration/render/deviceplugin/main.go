// Command deviceplugin-check reads NVIDIA device plugin config files with the plugin's own
// config package (github.com/NVIDIA/k8s-device-plugin/api/config/v1) and prints what the
// plugin understood, as JSON: the sharing strategy, the MIG strategy and the resources it
// would advertise. It fails (exit 1) on anything the plugin rejects, on a MIG strategy it
// does not know, and on any field it silently drops (a typo the plugin would ignore).
//
//	deviceplugin-check FILE...
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"

	dp "github.com/NVIDIA/k8s-device-plugin/api/config/v1"
	"sigs.k8s.io/yaml"
)

type resource struct {
	Name       string `json:"name"`
	Advertised string `json:"advertised"`
	Replicas   int    `json:"replicas"`
}

type summary struct {
	File                       string     `json:"file"`
	Sharing                    string     `json:"sharing"`
	MigStrategy                string     `json:"migStrategy"`
	FailRequestsGreaterThanOne bool       `json:"failRequestsGreaterThanOne"`
	Resources                  []resource `json:"resources"`
}

// dropped lists the paths of *given* that *kept* lacks or holds with another value.
func dropped(path string, given, kept interface{}) []string {
	gm, ok := given.(map[string]interface{})
	if !ok {
		if gl, isList := given.([]interface{}); isList {
			kl, _ := kept.([]interface{})
			var out []string
			for i, item := range gl {
				if i >= len(kl) {
					return append(out, fmt.Sprintf("%s[%d]", path, i))
				}
				out = append(out, dropped(fmt.Sprintf("%s[%d]", path, i), item, kl[i])...)
			}
			return out
		}
		if !reflect.DeepEqual(given, kept) {
			return []string{fmt.Sprintf("%s (%v read as %v)", path, given, kept)}
		}
		return nil
	}
	km, _ := kept.(map[string]interface{})
	var out []string
	for key, value := range gm {
		if _, found := km[key]; !found {
			out = append(out, path+"."+key)
			continue
		}
		out = append(out, dropped(path+"."+key, value, km[key])...)
	}
	return out
}

func check(file string) (*summary, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var config dp.Config
	if err := yaml.UnmarshalStrict(data, &config); err != nil {
		return nil, err
	}
	if config.Version != dp.Version {
		return nil, fmt.Errorf("version %q: the plugin reads %q", config.Version, dp.Version)
	}
	mig := dp.MigStrategyNone
	if config.Flags.MigStrategy != nil {
		mig = *config.Flags.MigStrategy
	}
	if mig != dp.MigStrategyNone && mig != dp.MigStrategySingle && mig != dp.MigStrategyMixed {
		return nil, fmt.Errorf("flags.migStrategy %q: one of none, single, mixed", mig)
	}
	var given, kept interface{}
	if err := yaml.Unmarshal(data, &given); err != nil {
		return nil, err
	}
	round, err := json.Marshal(config)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(round, &kept); err != nil {
		return nil, err
	}
	if lost := dropped("", given, kept); len(lost) > 0 {
		return nil, fmt.Errorf("fields the plugin does not keep: %v", lost)
	}
	out := &summary{File: file, Sharing: string(config.Sharing.SharingStrategy()), MigStrategy: mig, Resources: []resource{}}
	shared := config.Sharing.ReplicatedResources()
	out.FailRequestsGreaterThanOne = shared.FailRequestsGreaterThanOne
	for _, r := range shared.Resources {
		advertised := r.Rename
		if advertised == "" {
			advertised = r.Name
		}
		out.Resources = append(out.Resources, resource{string(r.Name), string(advertised), r.Replicas})
	}
	return out, nil
}

func main() {
	failed := false
	for _, file := range os.Args[1:] {
		result, err := check(file)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
			failed = true
			continue
		}
		line, _ := json.Marshal(result)
		fmt.Println(string(line))
	}
	if failed {
		os.Exit(1)
	}
}
