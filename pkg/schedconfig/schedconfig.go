// Package schedconfig reads the scheduler's own KubeSchedulerConfiguration file and returns the
// SpotScore args of one profile, so that components running outside the scheduler (the
// deletion-cost controller, the rebalancer) classify nodes exactly as the scheduler does: one
// configuration, tiers that can never disagree.
//
// It uses the published kube-scheduler config types (k8s.io/kube-scheduler/config/v1) and
// decodes strictly, as kube-scheduler does, without importing k8s.io/kubernetes.
package schedconfig

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	schedv1 "k8s.io/kube-scheduler/config/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

const (
	// DefaultProfile is the profile (schedulerName) read when none is named.
	DefaultProfile = wellknown.SchedulerName
	// SpotScoreName is the SpotScore plugin's name in the configuration.
	SpotScoreName = "SpotScore"

	apiVersion = "kubescheduler.config.k8s.io/v1"
	kind       = "KubeSchedulerConfiguration"
	// kube-scheduler's defaults for a profile without a name and for its Lease.
	defaultSchedulerName   = "default-scheduler"
	defaultLeaseName       = "kube-scheduler"
	defaultLeaseNamespace  = "kube-system"
	defaultLeaderElectFlag = true
)

// Profile is what a component outside the scheduler needs from the scheduler's configuration.
type Profile struct {
	// File is the configuration file the profile was read from.
	File string
	// Name is the profile's schedulerName: pods with this spec.schedulerName are its pods.
	Name string
	// SpotScore holds the decoded, defaulted and validated SpotScore args of the profile.
	SpotScore *v1alpha1.SpotScoreArgs
	// Kubeconfig is clientConnection.kubeconfig of the file (may be empty).
	Kubeconfig string
	// SchedulerLeaseNamespace and SchedulerLeaseName name the scheduler's own Lease, which no
	// other component may use. SchedulerLeaderElect reports whether the scheduler elects.
	SchedulerLeaseNamespace string
	SchedulerLeaseName      string
	SchedulerLeaderElect    bool
}

// Load reads the KubeSchedulerConfiguration in file and returns the named profile (DefaultProfile
// when empty). Errors name the file, the profile and the offending field.
func Load(file, profile string) (*Profile, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading scheduler configuration: %w", err)
	}
	return Parse(file, data, profile)
}

// Parse is Load on data already read from file (file is used in errors only).
func Parse(file string, data []byte, profile string) (*Profile, error) {
	if profile == "" {
		profile = DefaultProfile
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("scheduler configuration %s: %s", file, fmt.Sprintf(format, args...))
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, fail("the file is empty")
	}
	jsonData, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fail("%v", err)
	}
	var cfg schedv1.KubeSchedulerConfiguration
	strictErrs, err := kjson.UnmarshalStrict(jsonData, &cfg)
	if err != nil {
		return nil, fail("%v", err)
	}
	if len(strictErrs) > 0 {
		return nil, fail("%v", errors.Join(strictErrs...))
	}
	if cfg.APIVersion != apiVersion {
		return nil, fail("apiVersion: Unsupported value: %q: supported values: %q", cfg.APIVersion, apiVersion)
	}
	if cfg.Kind != kind {
		return nil, fail("kind: Unsupported value: %q: supported values: %q", cfg.Kind, kind)
	}

	index := -1
	var names []string
	for i, p := range cfg.Profiles {
		name := defaultSchedulerName
		if p.SchedulerName != nil && *p.SchedulerName != "" {
			name = *p.SchedulerName
		}
		names = append(names, name)
		if name != profile {
			continue
		}
		if index >= 0 {
			return nil, fail("profiles[%d].schedulerName: Duplicate value: %q", i, name)
		}
		index = i
	}
	if index < 0 {
		if len(names) == 0 {
			names = []string{defaultSchedulerName + " (implicit)"}
		}
		return nil, fail("profile %q: no profile has this schedulerName (profiles: %s)", profile, strings.Join(names, ", "))
	}
	p := cfg.Profiles[index]
	path := field.NewPath("profiles").Index(index)
	if !enablesSpotScore(p.Plugins) {
		return nil, fail("profile %q: %s: %s is not enabled (in multiPoint or score), so the scheduler does not rank by capacity tier", profile, path.Child("plugins"), SpotScoreName)
	}

	var raw []byte
	found := false
	argsPath := path.Child("pluginConfig")
	for j, pc := range p.PluginConfig {
		if pc.Name != SpotScoreName {
			continue
		}
		if found {
			return nil, fail("profile %q: %s: Duplicate value: %q", profile, path.Child("pluginConfig").Index(j).Child("name"), SpotScoreName)
		}
		found = true
		raw = pc.Args.Raw
		argsPath = path.Child("pluginConfig").Index(j).Child("args")
	}
	var obj runtime.Object
	if len(raw) > 0 {
		obj = &runtime.Unknown{Raw: raw, ContentType: runtime.ContentTypeJSON}
	}
	args, err := v1alpha1.DecodeSpotScoreArgs(obj, argsPath)
	if err != nil {
		return nil, fail("profile %q: %v", profile, err)
	}

	out := &Profile{
		File:                    file,
		Name:                    profile,
		SpotScore:               args,
		Kubeconfig:              cfg.ClientConnection.Kubeconfig,
		SchedulerLeaseNamespace: cfg.LeaderElection.ResourceNamespace,
		SchedulerLeaseName:      cfg.LeaderElection.ResourceName,
		SchedulerLeaderElect:    defaultLeaderElectFlag,
	}
	if cfg.LeaderElection.LeaderElect != nil {
		out.SchedulerLeaderElect = *cfg.LeaderElection.LeaderElect
	}
	if out.SchedulerLeaseNamespace == "" {
		out.SchedulerLeaseNamespace = defaultLeaseNamespace
	}
	if out.SchedulerLeaseName == "" {
		out.SchedulerLeaseName = defaultLeaseName
	}
	return out, nil
}

// enablesSpotScore reports whether the profile's plugins enable SpotScore at score, or at
// multiPoint without disabling it at score.
func enablesSpotScore(p *schedv1.Plugins) bool {
	if p == nil {
		return false
	}
	has := func(ps []schedv1.Plugin) bool {
		for _, x := range ps {
			if x.Name == SpotScoreName {
				return true
			}
		}
		return false
	}
	if has(p.Score.Enabled) {
		return true
	}
	return has(p.MultiPoint.Enabled) && !has(p.Score.Disabled) && !disabledAll(p.Score.Disabled)
}

func disabledAll(ps []schedv1.Plugin) bool {
	for _, x := range ps {
		if x.Name == "*" {
			return true
		}
	}
	return false
}
