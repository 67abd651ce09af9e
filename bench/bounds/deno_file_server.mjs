// Deno.serve answering every GET with a Deno.FsFile's readable: a resource-backed body that Deno's
// Rust side copies from file to socket with no JavaScript per chunk. The floor of Deno.serve itself.
const [file, port] = Deno.args;
const size = (await Deno.stat(file)).size;
Deno.serve({ hostname: "127.0.0.1", port: Number(port), onListen() {} }, async () => {
  const f = await Deno.open(file);
  return new Response(f.readable, { headers: { "Content-Length": String(size) } });
});
