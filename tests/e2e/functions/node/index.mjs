// Handlers for AWS's Node.js runtime client under our server (tests/e2e/test_e2e_node_ric.py): the same
// pieces of the Lambda contract as ../basic/handlers.py, written as a Node function author would.

// Module state lives as long as one execution environment: warm invokes see it, a fresh one does not.
let invocationCount = 0;

console.log("node handlers module initialised");

class CustomError extends Error {
  constructor(message) {
    super(message);
    this.name = "CustomError";
  }
}

export const echo = async (event) => event;

export const shout = async (event) => {
  console.log(`handler says ${event.word}`);
  return { said: event.word };
};

export const fail = async (event) => {
  throw new CustomError(`something bad: ${event.n ?? 42}`);
};

// Counter for warm reuse; on request it sleeps past the timeout or ends the process mid-invoke.
export const state = async (event) => {
  if (event.sleep) {
    await new Promise((resolve) => setTimeout(resolve, event.sleep * 1000));
  }
  if ("exit" in event) {
    process.exit(event.exit);
  }
  if (event.sigkill) {
    process.kill(process.pid, "SIGKILL");
  }
  invocationCount += 1;
  return { count: invocationCount, pid: process.pid };
};

export const context = async (event, context) => ({
  function_name: context.functionName,
  function_version: context.functionVersion,
  memory_limit_in_mb: context.memoryLimitInMB,
  invoked_function_arn: context.invokedFunctionArn,
  aws_request_id: context.awsRequestId,
  log_group_name: context.logGroupName,
  log_stream_name: context.logStreamName,
  remaining_time_in_millis: context.getRemainingTimeInMillis(),
  client_context: context.clientContext ?? null,
  task_root: process.env.LAMBDA_TASK_ROOT,
  cwd: process.cwd(),
});

// Response streaming, as AWS documents it: the `awslambda` global the client installs.
export const chunks = awslambda.streamifyResponse(async (event, responseStream) => {
  for (let index = 0; index < event.count; index++) {
    responseStream.write(`chunk ${index}\n`);
  }
  responseStream.end();
});

export const breaks = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.write("first part\n");
  throw new Error("the stream broke");
});
