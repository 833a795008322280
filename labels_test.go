package imaged

import (
	"reflect"
	"strings"
	"testing"
)

// fixtureLabels are the labels of the six images the registry peer's
// push-fixtures.sh pushes (../shared/peers/registry), copied here so the
// tests need no registry.
func fixtureLabels() map[string]map[string]string {
	common := func(extra ...string) map[string]string {
		m := map[string]string{
			"ai.backend.kernelspec":    "1",
			"ai.backend.features":      "batch query uid-match user-input",
			"ai.backend.runtime-type":  "python",
			"ai.backend.runtime-path":  "/usr/bin/python3",
			"ai.backend.service-ports": "ipython:pty:3000,jupyter:http:8081",
		}
		for i := 0; i < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	return map[string]map[string]string{
		"bai/python:3.9-ubuntu20.04": common("ai.backend.base-distro", "ubuntu20.04",
			"ai.backend.resource.min.cpu", "1", "ai.backend.resource.min.mem", "256m"),
		"bai/python:3.11-ubuntu22.04": common("ai.backend.base-distro", "ubuntu22.04",
			"ai.backend.resource.min.cpu", "1", "ai.backend.resource.min.mem", "1g"),
		"bai/pytorch:2.1-py310": common("ai.backend.base-distro", "ubuntu22.04",
			"ai.backend.resource.min.cpu", "2", "ai.backend.resource.min.mem", "2g"),
		"bai/cuda:12.1-py311": common("ai.backend.base-distro", "ubuntu22.04",
			"ai.backend.accelerators", "cuda", "ai.backend.resource.min.cpu", "2", "ai.backend.resource.min.mem", "4g",
			"ai.backend.resource.min.cuda.device", "1", "ai.backend.resource.min.cuda.shares", "0.1"),
		"bai/vllm:0.4-inference": {
			"ai.backend.kernelspec": "1", "ai.backend.role": "INFERENCE",
			"ai.backend.runtime-type": "python", "ai.backend.runtime-path": "/usr/bin/python3",
			"ai.backend.base-distro": "ubuntu22.04", "ai.backend.service-ports": "vllm:preopen:8000",
			"ai.backend.endpoint-ports": "vllm", "ai.backend.model-path": "/models",
			"ai.backend.model-format": "safetensors", "ai.backend.resource.min.mem": "8g",
		},
		"other/busybox:latest": {"org.opencontainers.image.title": "busybox"},
	}
}

func TestValidateLabelsFixtures(t *testing.T) {
	t.Parallel()
	wantAcc := map[string][]string{
		"bai/python:3.9-ubuntu20.04":  {},
		"bai/python:3.11-ubuntu22.04": {},
		"bai/pytorch:2.1-py310":       {},
		"bai/cuda:12.1-py311":         {"cuda"},
		"bai/vllm:0.4-inference":      {},
		"other/busybox:latest":        nil,
	}
	for ref, labels := range fixtureLabels() {
		if err := ValidateLabels(labels); err != nil {
			t.Errorf("%s: %v", ref, err)
		}
		got := AcceleratorsFromLabels(labels)
		if !reflect.DeepEqual(got, wantAcc[ref]) {
			t.Errorf("%s: accelerators %#v, want %#v", ref, got, wantAcc[ref])
		}
	}
}

func TestValidateLabelsInvalid(t *testing.T) {
	t.Parallel()
	base := func(kv ...string) map[string]string {
		m := map[string]string{"ai.backend.kernelspec": "1"}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "<delete>" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	vllm := fixtureLabels()["bai/vllm:0.4-inference"]
	infer := func(kv ...string) map[string]string {
		m := base()
		for k, v := range vllm {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "<delete>" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	cases := []struct {
		name   string
		labels map[string]string
		msg    string
	}{
		{"kernelspec 2", base("ai.backend.kernelspec", "2"), "ai.backend.kernelspec: must be 1"},
		{"kernelspec text", base("ai.backend.kernelspec", "one"), "ai.backend.kernelspec: must be 1"},
		{"bad role", base("ai.backend.role", "TRAINING"), "ai.backend.role"},
		{"empty role", base("ai.backend.role", ""), "ai.backend.role"},
		{"ports no proto", base("ai.backend.service-ports", "jupyter:8080"), "not name:protocol:port"},
		{"ports bad proto", base("ai.backend.service-ports", "jupyter:udp:8080"), "unknown protocol"},
		{"ports zero", base("ai.backend.service-ports", "jupyter:http:0"), "invalid port"},
		{"ports big", base("ai.backend.service-ports", "jupyter:http:65536"), "invalid port"},
		{"ports text", base("ai.backend.service-ports", "jupyter:http:x"), "invalid port"},
		{"ports dup name", base("ai.backend.service-ports", "a:http:1,a:tcp:2"), "declared twice"},
		{"ports dup port", base("ai.backend.service-ports", "a:http:1,b:tcp:[2,1]"), "port 1 is declared twice"},
		{"ports open bracket", base("ai.backend.service-ports", "a:tcp:[1,2"), "unterminated"},
		{"ports bad name", base("ai.backend.service-ports", "a b:tcp:1"), "invalid service name"},
		{"ports trailing", base("ai.backend.service-ports", "a:tcp:[1]x"), "unexpected"},
		{"inference no endpoint", infer("ai.backend.endpoint-ports", "<delete>"), "ai.backend.endpoint-ports: required"},
		{"inference endpoint unknown", infer("ai.backend.endpoint-ports", "other"), "not a service port with protocol preopen"},
		{"inference endpoint not preopen", infer("ai.backend.service-ports", "vllm:http:8000"), "not a service port with protocol preopen"},
		{"inference no model path", infer("ai.backend.model-path", "<delete>"), "ai.backend.model-path: required"},
		{"inference no model format", infer("ai.backend.model-format", " "), "ai.backend.model-format: required"},
		{"min mem", base("ai.backend.resource.min.mem", "lots"), "ai.backend.resource.min.mem"},
		{"min mem fraction", base("ai.backend.resource.min.mem", "1.5b"), "fractional bytes"},
		{"min cpu negative", base("ai.backend.resource.min.cpu", "-1"), "ai.backend.resource.min.cpu"},
		{"min slot empty", base("ai.backend.resource.min.", "1"), "invalid resource slot name"},
		{"owner no scope", base(LabelCustomizedOwner, "1234"), LabelCustomizedOwner},
		{"owner empty id", base(LabelCustomizedOwner, "user:"), LabelCustomizedOwner},
		{"owner other scope", base(LabelCustomizedOwner, "project:1"), LabelCustomizedOwner},
	}
	for _, c := range cases {
		err := ValidateLabels(c.labels)
		if ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), c.msg) {
			t.Errorf("%s: ValidateLabels = %v, want EINVALID containing %q", c.name, err, c.msg)
		}
	}
}

func TestValidateLabelsValid(t *testing.T) {
	t.Parallel()
	cases := []map[string]string{
		{},
		nil,
		{"ai.backend.role": "NONSENSE", "ai.backend.service-ports": "x"}, // foreign: not validated
		{"ai.backend.kernelspec": " 1 "},
		{"ai.backend.kernelspec": "1", "ai.backend.role": "system", "ai.backend.service-ports": ""},
		{"ai.backend.kernelspec": "1", "ai.backend.service-ports": "a:tcp:[1,2],b:http:3,c:preopen:4"},
		{"ai.backend.kernelspec": "1", "ai.backend.role": "Inference", "ai.backend.service-ports": "a:preopen:[8000,8001]",
			"ai.backend.endpoint-ports": "a, 8001", "ai.backend.model-path": "/m", "ai.backend.model-format": "gguf"},
		{"ai.backend.kernelspec": "1", LabelCustomizedOwner: "user:2b3c", "ai.backend.resource.min.mem": "1GiB",
			"ai.backend.resource.min.cuda.shares": "0.5", "ai.backend.resource.max.mem": "whatever"},
	}
	for _, l := range cases {
		if err := ValidateLabels(l); err != nil {
			t.Errorf("ValidateLabels(%v) = %v", l, err)
		}
	}
}

func TestAcceleratorsFromLabels(t *testing.T) {
	t.Parallel()
	cases := []struct {
		labels map[string]string
		want   []string
	}{
		{map[string]string{}, nil},
		{map[string]string{"ai.backend.accelerators": "cuda"}, nil}, // foreign image: any
		{map[string]string{"ai.backend.kernelspec": "1"}, []string{}},
		{map[string]string{"ai.backend.kernelspec": "1", "ai.backend.accelerators": "rocm, cuda,,cuda",
			"ai.backend.resource.min.cuda.device": "1", "ai.backend.resource.max.ipu.device": "4",
			"ai.backend.resource.min.cpu": "1", "ai.backend.resource.max.mem": "4g"}, []string{"cuda", "ipu", "rocm"}},
	}
	for _, c := range cases {
		if got := AcceleratorsFromLabels(c.labels); !reflect.DeepEqual(got, c.want) {
			t.Errorf("AcceleratorsFromLabels(%v) = %#v, want %#v", c.labels, got, c.want)
		}
	}
}
