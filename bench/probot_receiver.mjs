// The reference: a Probot app (installed from the npm registry by bench/ingest.py) with one
// handler per event that does nothing, served by Node's http server the way Probot's docs show.
// Probot verifies the signature, parses the payload and runs the handlers, and keeps nothing:
// the comparison with Autopack shows what durable storage costs against the tool people use.
import { createServer } from "node:http";
import { createNodeMiddleware, createProbot } from "probot";

const probot = createProbot({
  overrides: {
    appId: 1,
    privateKey: process.env.PRIVATE_KEY,
    secret: process.env.WEBHOOK_SECRET,
    logLevel: "warn",
  },
});

const app = (bot) => {
  bot.on(process.env.BENCH_EVENT || "issues", async () => {});
};

const middleware = await createNodeMiddleware(app, { probot, webhooksPath: "/api/github/webhooks" });
createServer((req, res) => {
  middleware(req, res, () => {
    res.writeHead(404);
    res.end();
  });
}).listen(Number(process.env.PORT), "127.0.0.1");
