# workerd configuration of the edge worker: `npm start` runs `workerd serve workerd.capnp` after
# scripts/workerd-modules.mjs has laid out the built worker, the @lowbit packages it imports and the
# embedded model (a Data module) as modules in dist/workerd/ (workerd does not read node_modules).
# Cloudflare's wrangler reads wrangler.toml instead.
using Workerd = import "/workerd/workerd.capnp";
using Modules = import "dist/workerd/modules.capnp";

const config :Workerd.Config = (
  services = [(name = "main", worker = .worker)],
  # another address: workerd serve workerd.capnp --socket-addr http=0.0.0.0:9000
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "main")],
);

const worker :Workerd.Worker = (
  modules = Modules.modules,
  # 2025-05-05: the first date with FinalizationRegistry, which @lowbit/runtime's sessions use
  compatibilityDate = "2025-05-05",
);
