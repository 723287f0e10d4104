// A module that throws while it is imported: init fails.
class BootError extends Error {
  constructor(message) {
    super(message);
    this.name = "BootError";
  }
}

throw new BootError("failed during init");

export const handler = async () => "unreachable";
