// withIronpool allocates ironpool nodes for the closure and always releases
// them, in a finally block, whether the body succeeds, fails or the build is
// aborted. Load this repository's integrations/jenkins as a shared library.
//
//   @Library('ironpool') _
//   node {
//     withIronpool(owner: "jenkins-${env.BUILD_TAG}", flavors: [standard: 2],
//                  constraints: ['cpus>=16,count=1'], ttl: '2h', wait: '30m') {
//       sh 'run-tests.sh $IRONPOOL_NODES'
//     }
//   }
//
// The ironpool CLI must be on the agent's PATH, with IRONPOOL_URL and
// IRONPOOL_TOKEN in the environment (withCredentials for the token). The
// shell each step runs is in resources/ironpool/, so that it can be tested
// without Jenkins exactly as Jenkins runs it (sh -xe).
def call(Map args = [:], Closure body) {
    String owner = (args.owner ?: "jenkins-${env.BUILD_TAG}").replaceAll(/[^A-Za-z0-9_.-]/, '-')
    if (owner.length() > 63) {
        owner = owner.substring(0, 63)
    }
    String flavors = (args.flavors ?: [:]).collect { k, v -> "${k}=${v}" }.join(' ')
    String constraints = (args.constraints ?: []).join(' ')
    String envFile = "${env.WORKSPACE ?: pwd()}/.ironpool-${env.BUILD_NUMBER ?: 'build'}.env"
    withEnv(["IRONPOOL_OWNER=${owner}", "IRONPOOL_FLAVORS=${flavors}", "IRONPOOL_CONSTRAINTS=${constraints}",
             "IRONPOOL_TTL=${args.ttl ?: '2h'}", "IRONPOOL_WAIT=${args.wait ?: '30m'}", "IRONPOOL_ENV_FILE=${envFile}"]) {
        try {
            sh libraryResource('ironpool/allocate.sh')
            List<String> vars = readFile(envFile).readLines().findAll { it.contains('=') }
            withEnv(vars) {
                body()
            }
        } finally {
            sh libraryResource('ironpool/release.sh')
        }
    }
}
