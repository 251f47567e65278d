from fer_agent.cli import main

main()
