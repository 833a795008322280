package agent

// ParseGlanceRef exposes the glance:// reference parser to the fuzz tests.
var ParseGlanceRef = parseGlanceRef
