package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestDBPoolFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args     []string
		env      map[string]string
		idle     int
		lifetime time.Duration
		wantErr  string
	}{
		{},
		{args: []string{"--db-max-idle-conns", "2", "--db-conn-max-lifetime", "30m"}, idle: 2, lifetime: 30 * time.Minute},
		{env: map[string]string{"IMAGED_DB_MAX_IDLE_CONNS": "3", "IMAGED_DB_CONN_MAX_LIFETIME": "90s"}, idle: 3, lifetime: 90 * time.Second},
		{args: []string{"--db-conn-max-lifetime", "0"}},
		{args: []string{"--db-max-idle-conns", "-1"}, wantErr: "invalid --db-max-idle-conns"},
		{args: []string{"--db-conn-max-lifetime", "-5s"}, wantErr: "invalid --db-conn-max-lifetime"},
		{args: []string{"--db-conn-max-lifetime", "soon"}, wantErr: "invalid --db-conn-max-lifetime"},
		{env: map[string]string{"IMAGED_DB_MAX_IDLE_CONNS": "many"}, wantErr: "IMAGED_DB_MAX_IDLE_CONNS"},
	}
	for _, tc := range tests {
		c, err := parseServeFlags(tc.args, envOf(tc.env), io.Discard)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v %v: err %v, want %q", tc.args, tc.env, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v %v: %v", tc.args, tc.env, err)
			continue
		}
		if c.DBMaxIdleConns != tc.idle || c.DBConnMaxLifetime != tc.lifetime {
			t.Errorf("%v %v: idle %d lifetime %v, want %d %v", tc.args, tc.env, c.DBMaxIdleConns, c.DBConnMaxLifetime, tc.idle, tc.lifetime)
		}
	}
}
