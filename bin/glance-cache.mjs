#!/usr/bin/env node
// The glance-cache command (package.json "bin"): loads tsx's loader, then runs cli.ts.
import { register } from "tsx/esm/api";

register();
await import("../cli.ts");
