package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestSubcommandErrors(t *testing.T) {
	badConfig := "[Global]\nauth-url = http://127.0.0.1:1/v3\npassword = " + secret + "\n"
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"check help", []string{"check", "--help"}, exitOK, "Usage: cinder-provisioner check"},
		{"check unknown flag", []string{"check", "--workers", "2"}, exitUsage, "unknown flag: --workers"},
		{"check both configs", []string{"check", "--cloud-config", "x", "--cloud", "y"}, exitUsage, "--cloud: cannot be combined with --cloud-config"},
		{"check bad initiator", []string{"check", "--cloud-config", "x", "--iscsi-initiator-name", "nope"}, exitUsage, "--iscsi-initiator-name"},
		{"check invalid config names the key", []string{"check", "--cloud-config", "@bad"}, exitError, "username"},
		{"orphans needs a cluster id", []string{"orphans", "--cloud-config", "x"}, exitUsage, "--cluster-id: is required"},
		{"orphans help", []string{"orphans", "--help"}, exitOK, "--delete"},
		{"orphans help names the unknown-policy switch", []string{"orphans", "--help"}, exitOK, "--include-unknown-policy"},
		{"orphans help names the never-held Retain switch", []string{"orphans", "--help"}, exitOK, "--include-never-held-retain"},
		{"orphans help says exported volumes stay", []string{"orphans", "--help"}, exitOK, "never an exported volume"},
		{"orphans help says what protects a claim's volume", []string{"orphans", "--help"}, exitOK, "never one whose claim"},
		{"orphans help names the Secret namespace flag", []string{"orphans", "--help"}, exitOK, "--secret-namespace"},
		{"orphans takes no connector flags (it never touches exports)", []string{"orphans", "--cluster-id", "c1", "--iscsi-initiator-name", "iqn.2026-01.org.example:x"}, exitUsage, "unknown flag: --iscsi-initiator-name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string(nil), tc.args...)
			for i, a := range args {
				if a == "@bad" {
					args[i] = writeFile(t, "cloud.conf", badConfig)
				}
			}
			var stdout, stderr bytes.Buffer
			code := run(args, &stdout, &stderr, env{Getenv: func(string) string { return "" }, ReadFile: func(string) ([]byte, error) { return nil, nil }})
			if code != tc.wantCode {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", code, tc.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantErr, stderr.String())
			}
			if strings.Contains(stdout.String()+stderr.String(), secret) {
				t.Errorf("output shows the password")
			}
			if tc.wantCode != exitOK && strings.Count(strings.TrimSpace(stderr.String()), "\n") > 0 {
				t.Errorf("error is not one line:\n%s", stderr.String())
			}
		})
	}
}
