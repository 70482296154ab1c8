"""CDK entry point: one stack set per stage listed in cdk.json context."""

import aws_cdk as cdk

app = cdk.App()
app.synth()
